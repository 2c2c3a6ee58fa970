using SharpLens.Models;
using SharpLens.Hooks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SharpLens.Loading;

/// <summary>
/// The model a family's weight map fills, one parameter at a time: each converted tensor is produced, copied into the
/// parameter of its TransformerLens name (in the model's dtype and device) and freed before the next is made, so
/// loading needs the model plus one tensor in flight, never a second copy of the whole state dict.
/// </summary>
/// <remarks>
/// Most weights are copied from the file straight into a view of their parameter in the stored layout
/// (<see cref="Fill(string, Action{Tensor})"/> with <see cref="HuggingFaceTensorSource.ReadInto"/>: W_Qᵀ, a head's rows, W_Uᵀ), through a
/// staging buffer of a megabyte. A weight that must be computed (Gemma's scaled embedding, a fused block cut by a
/// reshape) is made by <see cref="Write"/> inside its own dispose scope: everything it allocates is freed as soon as
/// its values sit in the parameter. <see cref="Finish"/> then checks
/// that the map wrote every parameter the config implies.
/// </remarks>
public sealed class ParameterWriter
{
    readonly HookedRootModule _model;
    readonly Dictionary<string, Parameter> _parameters;
    readonly HashSet<string> _written = new(StringComparer.Ordinal);

    internal ParameterWriter(HookedRootModule model)
    {
        _model = model;
        _parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
    }

    /// <summary>Copies the tensor <paramref name="convert"/> makes into parameter <paramref name="name"/>, then frees what it made.</summary>
    public void Write(string name, Func<Tensor> convert)
    {
        var parameter = Target(name);
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var value = convert();
        if (!value.shape.SequenceEqual(parameter.shape))
            throw new StateDictException(name, $"State dict tensor '{name}' has shape {ShapeText.Of(value.shape)} but the model expects {ShapeText.Of(parameter.shape)}; check d_model, n_heads, d_head, d_mlp, d_vocab and n_ctx in the config.");
        parameter.copy_(value);
    }

    /// <summary>Lets <paramref name="fill"/> write parameter <paramref name="name"/> in place (through views of it in the stored layout), then frees what it made.</summary>
    public void Fill(string name, Action<Tensor> fill)
    {
        var parameter = Target(name);
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        fill(parameter);
    }

    /// <summary>As <see cref="Fill(string, Action{Tensor})"/>, for parameters one stored tensor holds side by side (c_attn's W_Q, W_K, W_V), so it is read once for all of them.</summary>
    public void Fill(IReadOnlyList<string> names, Action<IReadOnlyList<Tensor>> fill)
    {
        IReadOnlyList<Tensor> parameters = [.. names.Select(Target)];
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        fill(parameters);
    }

    /// <summary>Sets parameter <paramref name="name"/> to zeros (a bias the architecture does not store).</summary>
    public void Zero(string name)
    {
        using var _ = torch.no_grad();
        Target(name).zero_();
    }

    Parameter Target(string name)
    {
        if (!_parameters.TryGetValue(name, out var parameter))
            throw new StateDictException(name, $"The weight map writes '{name}', which {_model.Config.ModelName} has no parameter for. Does the config match the weights (attn_only, normalization_type, positional embedding)?");
        if (!_written.Add(name))
            throw new StateDictException(name, $"The weight map writes '{name}' twice.");
        return parameter;
    }

    /// <summary>
    /// Fills <paramref name="model"/> (allocated, not initialised) through <paramref name="write"/>, checks every parameter
    /// was written, and returns it; on any failure the model is disposed and the error goes on.
    /// </summary>
    internal static TModel Fill<TModel>(TModel model, Action<ParameterWriter> write) where TModel : HookedRootModule
    {
        try
        {
            var into = new ParameterWriter(model);
            write(into);
            into.Finish();
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Throws for parameters the weight map left unwritten (they would hold uninitialised memory).</summary>
    internal void Finish()
    {
        var missing = _parameters.Keys.Where(n => !_written.Contains(n)).ToList();
        if (missing.Count > 0)
            throw new StateDictException(missing[0], $"The weight map left {missing.Count} of {_model.Config.ModelName}'s {_parameters.Count} parameters unwritten: " +
                $"{string.Join(", ", missing.Take(5).Select(n => $"'{n}'"))}{(missing.Count > 5 ? ", ..." : "")}.");
    }
}
