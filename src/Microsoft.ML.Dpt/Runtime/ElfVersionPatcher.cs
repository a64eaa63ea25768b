using System.Buffers.Binary;
using System.Text;

namespace Microsoft.ML.Dpt.Runtime;

/// <summary>
/// Edits the version requirements (<c>.gnu.version_r</c>, <c>Elf64_Verneed</c>/<c>Elf64_Vernaux</c>) of a
/// 64-bit little-endian ELF shared library held in memory.
/// </summary>
/// <remarks>
/// Marking a needed version weak (<c>VER_FLG_WEAK</c>) makes glibc's loader accept a dependency that lacks
/// that version. TorchSharp 0.107's <c>libLibTorchSharp.so</c> names <c>GLIBCXX_3.4.32</c> for one symbol it
/// never calls, so weakening that one entry lets it load with GCC 12's libstdc++ (Debian 12, Ubuntu 22.04).
/// </remarks>
internal static class ElfVersionPatcher
{
    private const ushort VerFlagWeak = 0x2;
    private const uint SectionTypeGnuVerneed = 0x6ffffffe;

    /// <summary>One needed version: the library that must provide it, its name and whether it is weak.</summary>
    internal readonly record struct NeededVersion(string Library, string Name, bool IsWeak, int FlagsOffset);

    /// <summary>Lists every version requirement of the ELF image.</summary>
    /// <exception cref="InvalidDataException">The bytes are not a 64-bit little-endian ELF file with a well-formed version section.</exception>
    public static IReadOnlyList<NeededVersion> ReadNeededVersions(byte[] elf, string fileName)
    {
        var result = new List<NeededVersion>();
        if (!TryFindVerneed(elf, fileName, out var sectionOffset, out var sectionSize, out var count, out var stringTable))
            return result;
        long entry = sectionOffset;
        for (int i = 0; i < count; i++)
        {
            Require(elf, entry, 16, fileName, "Elf64_Verneed entry");
            ushort auxCount = ReadU16(elf, entry + 2);
            uint fileNameOffset = ReadU32(elf, entry + 4);
            uint auxOffset = ReadU32(elf, entry + 8);
            uint next = ReadU32(elf, entry + 12);
            string library = ReadString(elf, stringTable + fileNameOffset, fileName);
            long aux = entry + auxOffset;
            for (int j = 0; j < auxCount; j++)
            {
                Require(elf, aux, 16, fileName, "Elf64_Vernaux entry");
                ushort flags = ReadU16(elf, aux + 4);
                uint nameOffset = ReadU32(elf, aux + 8);
                uint auxNext = ReadU32(elf, aux + 12);
                result.Add(new NeededVersion(library, ReadString(elf, stringTable + nameOffset, fileName),
                    (flags & VerFlagWeak) != 0, checked((int)(aux + 4))));
                if (auxNext == 0) break;
                aux += auxNext;
            }
            if (next == 0) break;
            entry += next;
            if (entry >= sectionOffset + sectionSize) throw Malformed(fileName, "a version entry points past its section");
        }
        return result;
    }

    /// <summary>
    /// Marks the named versions weak in <paramref name="elf"/> (in place) and returns how many entries changed.
    /// </summary>
    public static int MarkWeak(byte[] elf, string fileName, IReadOnlyCollection<string> versionNames)
    {
        int changed = 0;
        foreach (var needed in ReadNeededVersions(elf, fileName))
        {
            if (needed.IsWeak || !versionNames.Contains(needed.Name)) continue;
            ushort flags = ReadU16(elf, needed.FlagsOffset);
            BinaryPrimitives.WriteUInt16LittleEndian(elf.AsSpan(needed.FlagsOffset), (ushort)(flags | VerFlagWeak));
            changed++;
        }
        return changed;
    }

    private static bool TryFindVerneed(byte[] elf, string fileName, out long offset, out long size, out uint count, out long stringTable)
    {
        offset = size = stringTable = 0;
        count = 0;
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
            throw Malformed(fileName, "it does not start with the ELF magic number");
        if (elf[4] != 2 || elf[5] != 1)
            throw Malformed(fileName, "only 64-bit little-endian ELF files are supported");
        long sectionTable = (long)ReadU64(elf, 0x28);
        ushort entrySize = ReadU16(elf, 0x3a);
        ushort sectionCount = ReadU16(elf, 0x3c);
        if (entrySize < 64) throw Malformed(fileName, $"section header size {entrySize} is smaller than 64 bytes");
        Require(elf, sectionTable, (long)entrySize * sectionCount, fileName, "section header table");
        for (int i = 0; i < sectionCount; i++)
        {
            long header = sectionTable + (long)i * entrySize;
            if (ReadU32(elf, header + 4) != SectionTypeGnuVerneed) continue;
            offset = (long)ReadU64(elf, header + 0x18);
            size = (long)ReadU64(elf, header + 0x20);
            uint link = ReadU32(elf, header + 0x28);
            count = ReadU32(elf, header + 0x2c);   // sh_info: number of Verneed entries
            Require(elf, offset, size, fileName, ".gnu.version_r section");
            if (link >= sectionCount) throw Malformed(fileName, "the version section links to a missing string table");
            stringTable = (long)ReadU64(elf, sectionTable + (long)link * entrySize + 0x18);
            return true;
        }
        return false;
    }

    private static string ReadString(byte[] elf, long offset, string fileName)
    {
        Require(elf, offset, 1, fileName, "string table entry");
        int end = Array.IndexOf(elf, (byte)0, checked((int)offset));
        if (end < 0) throw Malformed(fileName, "a string in the string table is not terminated");
        return Encoding.ASCII.GetString(elf, (int)offset, end - (int)offset);
    }

    private static void Require(byte[] elf, long offset, long length, string fileName, string what)
    {
        if (offset < 0 || length < 0 || offset + length > elf.Length)
            throw Malformed(fileName, $"its {what} lies outside the file (offset {offset}, {length} bytes, file {elf.Length} bytes)");
    }

    private static InvalidDataException Malformed(string fileName, string why) =>
        new($"Cannot read ELF version requirements of '{fileName}': {why}.");

    private static ushort ReadU16(byte[] b, long o) => BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(checked((int)o)));
    private static uint ReadU32(byte[] b, long o) => BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(checked((int)o)));
    private static ulong ReadU64(byte[] b, long o) => BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(checked((int)o)));
}
