using SharpLens.Learn;

namespace SharpLens.Tests.Learn;

/// <summary>What every chapter's page of the learner's plots must be: one self-contained HTML file beside the chapter file.</summary>
static class LearnPages
{
    /// <summary>Deletes the page of <paramref name="chapterFile"/>, so a test sees only what its own check writes.</summary>
    public static string Reset(string chapterFile)
    {
        string page = Checker.PagePath(chapterFile);
        if (File.Exists(page)) File.Delete(page);
        return page;
    }

    /// <summary>The page at <paramref name="path"/> exists, names its chapter, holds <paramref name="charts"/> inline SVG charts and nothing from outside.</summary>
    public static string AssertSelfContained(string path, int chapter, int charts)
    {
        Assert.True(File.Exists(path), $"the check should write {path}");
        string html = File.ReadAllText(path);
        Assert.StartsWith("<!DOCTYPE html>", html);
        Assert.Contains($"Chapter {chapter}: {Chapters.Get(chapter).Title}", html);
        Assert.Equal(charts, html.Split("<svg").Length - 1);
        Assert.DoesNotContain("<script", html);
        Assert.DoesNotContain("<link", html);
        Assert.DoesNotContain("src=", html);
        Assert.DoesNotContain("url(", html);
        Assert.DoesNotContain("http://", html);
        Assert.DoesNotContain("https://", html);
        return html;
    }
}
