using Microsoft.Playwright;

namespace SharpLens.BrowserTests;

/// <summary>One headless Debian Chromium for the test class; pages collect console errors; screenshots go to
/// the test output folder (screenshots/) so a person can look at them.</summary>
public sealed class Browser : IAsyncLifetime
{
    public const string ChromiumPath = "/usr/bin/chromium";
    IPlaywright? _playwright;
    public IBrowser Chromium { get; private set; } = null!;
    public static string ScreenshotFolder { get; } = Path.Combine(AppContext.BaseDirectory, "screenshots");

    public async Task InitializeAsync()
    {
        if (!File.Exists(ChromiumPath))
            throw new InvalidOperationException($"{ChromiumPath} is missing: these tests drive Debian's Chromium; install it with `apt-get install -y chromium` (.ci/run does).");
        _playwright = await Playwright.CreateAsync();
        Chromium = await _playwright.Chromium.LaunchAsync(new() { ExecutablePath = ChromiumPath, Headless = true });
        Directory.CreateDirectory(ScreenshotFolder);
    }

    public async Task DisposeAsync()
    {
        if (Chromium is not null) await Chromium.DisposeAsync();
        _playwright?.Dispose();
    }

    /// <summary>Opens a page at <paramref name="url"/>; every console error and uncaught exception lands in <paramref name="errors"/>.</summary>
    public async Task<IPage> OpenAsync(string url, List<string> errors, int width = 1400, int height = 900)
    {
        var page = await Chromium.NewPageAsync(new() { ViewportSize = new() { Width = width, Height = height }, AcceptDownloads = true });
        page.Console += (_, m) => { if (m.Type == "error") errors.Add(m.Text); };
        page.PageError += (_, e) => errors.Add(e);
        await page.GotoAsync(url);
        return page;
    }
}
