using SharpLens.Training;
using Spectre.Console;

namespace SharpLens.Cli;

/// <summary>
/// Shows training as it happens: a live Spectre.Console progress bar in a terminal, or one plain line every few steps
/// when the output goes to a pipe or a log.
/// </summary>
static class TrainingDisplay
{
    /// <param name="train">Runs the training, reporting to the progress it is given.</param>
    /// <param name="describe">The text beside the bar (and of each plain line) for a progress report.</param>
    public static T Run<T>(string title, int totalSteps, Func<IProgress<TrainingProgress>, T> train, Func<TrainingProgress, string> describe, int plainLines = 20)
    {
        if (Console.IsOutputRedirected || !AnsiConsole.Profile.Capabilities.Interactive)
        {
            int every = Math.Max(1, totalSteps / plainLines);
            return train(new Callback(p =>
            {
                if (p.Step % every == 0 || p.Step == p.TotalSteps) Console.WriteLine($"{describe(p)}  {p.Elapsed.TotalSeconds,7:0.0} s{Remaining(p)}");
            }));
        }

        T result = default!;
        AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(context =>
            {
                var task = context.AddTask(title, maxValue: totalSteps);
                result = train(new Callback(p =>
                {
                    task.Value = p.Step;
                    task.Description = describe(p);
                }));
                task.Value = task.MaxValue;
            });
        return result;
    }

    /// <summary>", about 42 s left" from the pace so far (nothing at the last step).</summary>
    static string Remaining(TrainingProgress p) => p.Step <= 0 || p.Step >= p.TotalSteps ? ""
        : $", about {p.Elapsed.TotalSeconds / p.Step * (p.TotalSteps - p.Step):0} s left";

    /// <summary>Reports synchronously on the training thread (unlike <see cref="Progress{T}"/>, which posts to the thread pool).</summary>
    sealed class Callback(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
