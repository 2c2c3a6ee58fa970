using System.Buffers.Binary;
using System.Text;

namespace SharpLens.Native;

/// <summary>
/// Reads the version requirements of an ELF64 little-endian shared library and marks one of them weak.
/// </summary>
/// <remarks>
/// The layout, as the ELF gABI defines it:
/// <code>
/// ELF header      e_shoff u64 @0x28, e_shentsize u16 @0x3A, e_shnum u16 @0x3C
/// section header  sh_type u32 @0x04 (SHT_GNU_verneed = 0x6ffffffe), sh_offset u64 @0x18, sh_size u64 @0x20,
///                 sh_link u32 @0x28 (index of the section holding the names, .dynstr)
/// Verneed         vn_version u16, vn_cnt u16, vn_file u32, vn_aux u32, vn_next u32
/// Vernaux         vna_hash u32, vna_flags u16, vna_other u16, vna_name u32, vna_next u32
/// </code>
/// The dynamic loader accepts a missing version whose Vernaux carries VER_FLG_WEAK (0x2), so setting that
/// flag turns a hard "version not found" failure into nothing at all for a symbol nobody relocates against.
/// </remarks>
public static class ElfVersionNeedPatch
{
    const uint ShtGnuVerneed = 0x6ffffffe;
    const ushort VerFlgWeak = 0x2;

    /// <summary>One Vernaux entry: the version name, whether it is weak, and where its flags live in the file.</summary>
    public sealed record VersionNeed(string Name, bool Weak, long FlagsOffset);

    /// <summary>Every version the file requires from its dependencies.</summary>
    /// <exception cref="InvalidDataException">Not an ELF64 little-endian file, or its version table is out of bounds.</exception>
    public static IReadOnlyList<VersionNeed> Read(byte[] elf, string fileName)
    {
        if (elf.Length < 0x40 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
            throw new InvalidDataException($"{fileName} is not an ELF file.");
        if (elf[4] != 2 || elf[5] != 1)
            throw new InvalidDataException($"{fileName} is not a 64-bit little-endian ELF file.");

        long U64(long at) => (long)BinaryPrimitives.ReadUInt64LittleEndian(elf.AsSpan((int)at));
        long U32(long at) => BinaryPrimitives.ReadUInt32LittleEndian(elf.AsSpan((int)at));
        int U16(long at) => BinaryPrimitives.ReadUInt16LittleEndian(elf.AsSpan((int)at));

        long shoff = U64(0x28);
        int shentsize = U16(0x3A), shnum = U16(0x3C);
        Check(shoff + (long)shentsize * shnum <= elf.Length, fileName, "section headers run past the end of the file");

        var needs = new List<VersionNeed>();
        for (int i = 0; i < shnum; i++)
        {
            long sh = shoff + (long)i * shentsize;
            if (U32(sh + 0x04) != ShtGnuVerneed) continue;
            long start = U64(sh + 0x18), end = start + U64(sh + 0x20);
            long link = U32(sh + 0x28);
            Check(end <= elf.Length && link < shnum, fileName, ".gnu.version_r is out of bounds");
            long strtab = shoff + link * shentsize;
            long strStart = U64(strtab + 0x18), strEnd = strStart + U64(strtab + 0x20);
            Check(strEnd <= elf.Length, fileName, ".dynstr is out of bounds");

            for (long vn = start; ; )
            {
                Check(vn + 16 <= end, fileName, "a Verneed entry runs past .gnu.version_r");
                int count = U16(vn + 2);
                long aux = vn + U32(vn + 8);
                for (int a = 0; a < count; a++)
                {
                    Check(aux + 16 <= end, fileName, "a Vernaux entry runs past .gnu.version_r");
                    long nameAt = strStart + U32(aux + 8);
                    Check(nameAt < strEnd, fileName, "a version name points past .dynstr");
                    var tail = elf.AsSpan((int)nameAt, (int)(strEnd - nameAt));
                    int nameEnd = tail.IndexOf((byte)0);
                    string name = Encoding.ASCII.GetString(nameEnd < 0 ? tail : tail[..nameEnd]);
                    needs.Add(new VersionNeed(name, (U16(aux + 4) & VerFlgWeak) != 0, aux + 4));
                    if (U32(aux + 12) == 0) break;
                    aux += U32(aux + 12);
                }
                if (U32(vn + 12) == 0) break;
                vn += U32(vn + 12);
            }
        }
        return needs;
    }

    /// <summary>Sets VER_FLG_WEAK on every Vernaux entry named <paramref name="versionName"/>, in place.</summary>
    /// <returns>How many entries were found (0: the file does not require that version, nothing changed).</returns>
    public static int MarkWeak(byte[] elf, string versionName, string fileName)
    {
        int found = 0;
        foreach (var need in Read(elf, fileName).Where(n => n.Name == versionName))
        {
            var flags = elf.AsSpan((int)need.FlagsOffset, 2);
            BinaryPrimitives.WriteUInt16LittleEndian(flags, (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(flags) | VerFlgWeak));
            found++;
        }
        return found;
    }

    static void Check(bool ok, string fileName, string what)
    {
        if (!ok) throw new InvalidDataException($"{fileName}: {what}.");
    }
}
