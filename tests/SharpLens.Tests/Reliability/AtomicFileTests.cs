using SharpLens.IO;

namespace SharpLens.Tests.Reliability;

public sealed class AtomicFileTests : IDisposable
{
    readonly string _folder = Path.Combine(Path.GetTempPath(), $"sharplens-atomic-{Guid.NewGuid():N}");
    public AtomicFileTests() => Directory.CreateDirectory(_folder);
    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void A_failed_write_leaves_the_old_file_untouched_and_no_temporary()
    {
        string path = Path.Combine(_folder, "a.txt");
        AtomicFile.WriteAllText(path, "old");
        Assert.Throws<InvalidTimeZoneException>(() => AtomicFile.Write(path, stream =>
        {
            stream.Write("new, half"u8);
            throw new InvalidTimeZoneException("disk pulled");
        }));
        Assert.Equal("old", File.ReadAllText(path));
        Assert.Equal(["a.txt"], Directory.GetFileSystemEntries(_folder).Select(Path.GetFileName));
    }

    [Fact]
    public void A_failed_folder_write_leaves_the_old_folder_complete()
    {
        string folder = Path.Combine(_folder, "model");
        AtomicFile.WriteFolder(folder, t => File.WriteAllText(Path.Combine(t, "config.json"), "v1"));
        Assert.Throws<InvalidTimeZoneException>(() => AtomicFile.WriteFolder(folder, t =>
        {
            File.WriteAllText(Path.Combine(t, "config.json"), "v2");
            throw new InvalidTimeZoneException("killed");
        }));
        Assert.Equal("v1", File.ReadAllText(Path.Combine(folder, "config.json")));
        AtomicFile.WriteFolder(folder, t => File.WriteAllText(Path.Combine(t, "config.json"), "v3"));
        Assert.Equal("v3", File.ReadAllText(Path.Combine(folder, "config.json")));
        Assert.Equal(["model"], Directory.GetFileSystemEntries(_folder).Select(Path.GetFileName));
    }

    [Fact]
    public void A_group_commits_all_outputs_or_none()
    {
        string a = Path.Combine(_folder, "a.npy"), b = Path.Combine(_folder, "b.npy");
        Assert.Throws<InvalidTimeZoneException>(() =>
        {
            using var group = AtomicFile.Together();
            group.Stage(a, s => s.Write("first"u8));
            group.Stage(b, (Stream _) => throw new InvalidTimeZoneException("second fails"));
            group.Commit();
        });
        Assert.Empty(Directory.GetFileSystemEntries(_folder));
        using (var group = AtomicFile.Together())
        {
            group.Stage(a, s => s.Write("first"u8));
            group.Stage(b, s => s.Write("second"u8));
            group.Commit();
        }
        Assert.Equal("second", File.ReadAllText(b));
        Assert.Equal(2, Directory.GetFileSystemEntries(_folder).Length);
    }
}
