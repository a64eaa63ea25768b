using System.IO.Compression;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Microsoft.ML.Dpt.Persistence;

/// <summary>
/// The package's one file format: a zip archive with <c>manifest.json</c> (what the file holds, its format
/// version and the settings needed to rebuild the model) and named binary entries (TorchSharp weights).
/// </summary>
/// <remarks>
/// ML.NET's <c>mlContext.Model.Save</c> cannot hold these models: its save/load contexts are internal to the ML.NET
/// repository. Save DPT components with their own <c>Save</c> and the rest of a pipeline with <c>mlContext.Model.Save</c>.
/// </remarks>
internal static class ModelFile
{
    public const string ManifestEntry = "manifest.json";
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>Writes a model file: the manifest gets <c>kind</c> and <c>formatVersion</c>, then each entry is written by its writer.</summary>
    public static void Write(string path, string kind, int formatVersion, JsonObject manifest, IReadOnlyDictionary<string, Action<Stream>> entries)
    {
        manifest["kind"] = kind;
        manifest["formatVersion"] = formatVersion;
        var folder = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(folder)) Directory.CreateDirectory(folder);
        var temp = path + ".tmp";
        using (var file = File.Create(temp))
        using (var zip = new ZipArchive(file, ZipArchiveMode.Create))
        {
            using (var writer = new StreamWriter(zip.CreateEntry(ManifestEntry).Open()))
                writer.Write(manifest.ToJsonString(Indented));
            foreach (var (name, write) in entries)
            {
                using var stream = zip.CreateEntry(name, CompressionLevel.Fastest).Open();
                write(stream);
            }
        }
        File.Move(temp, path, overwrite: true);   // a crash mid-write never leaves a half file under the real name
    }

    /// <summary>Opens a model file and checks its kind and version.</summary>
    /// <exception cref="InvalidDataException">The file is not a model file, is of another kind, of a newer version, or damaged.</exception>
    public static Reader Open(string path, string expectedKind, int supportedVersion)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Model file '{path}' does not exist.", path);
        ZipArchive zip;
        try
        {
            zip = ZipFile.OpenRead(path);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"'{path}' is not a Microsoft.ML.Dpt model file (it is not a zip archive): {e.Message}", e);
        }
        try
        {
            var entry = zip.GetEntry(ManifestEntry)
                ?? throw new InvalidDataException($"'{path}' is not a Microsoft.ML.Dpt model file: it has no {ManifestEntry}.");
            JsonObject manifest;
            using (var stream = entry.Open())
                manifest = JsonNode.Parse(stream) as JsonObject ?? throw new InvalidDataException($"Model file '{path}': {ManifestEntry} is not a JSON object.");
            var kind = (string?)manifest["kind"];
            if (kind != expectedKind)
                throw new InvalidDataException($"Model file '{path}' holds a '{kind}', not a '{expectedKind}'.");
            var version = (int?)manifest["formatVersion"] ?? 0;
            if (version < 1 || version > supportedVersion)
                throw new InvalidDataException($"Model file '{path}' has format version {version}; this version of Microsoft.ML.Dpt reads versions 1 to {supportedVersion}.");
            return new Reader(path, zip, manifest);
        }
        catch (Exception e) when (e is JsonException)
        {
            zip.Dispose();
            throw new InvalidDataException($"Model file '{path}' is damaged: {ManifestEntry} is not valid JSON ({e.Message}).", e);
        }
        catch
        {
            zip.Dispose();
            throw;
        }
    }

    /// <summary>An open model file.</summary>
    public sealed class Reader : IDisposable
    {
        private readonly string _path;
        private readonly ZipArchive _zip;

        internal Reader(string path, ZipArchive zip, JsonObject manifest)
        {
            _path = path;
            _zip = zip;
            Manifest = manifest;
        }

        /// <summary>The manifest.</summary>
        public JsonObject Manifest { get; }

        /// <summary>A required manifest value.</summary>
        public T Get<T>(string name) =>
            Manifest[name] is { } node ? node.Deserialize<T>() ?? throw Damaged($"manifest value '{name}' is null")
                : throw Damaged($"manifest value '{name}' is missing");

        /// <summary>Reads a named entry fully into memory (TorchSharp's loader needs a seekable stream).</summary>
        public MemoryStream ReadEntry(string name)
        {
            var entry = _zip.GetEntry(name) ?? throw Damaged($"entry '{name}' is missing");
            var memory = new MemoryStream();
            try
            {
                using var stream = entry.Open();
                stream.CopyTo(memory);
            }
            catch (InvalidDataException e)
            {
                throw Damaged($"entry '{name}' cannot be read ({e.Message})");
            }
            memory.Position = 0;
            return memory;
        }

        /// <summary>Loads a TorchSharp module's weights from entry <paramref name="name"/>, with a clear error when they do not fit.</summary>
        public void LoadWeights(TorchSharp.torch.nn.Module module, string name, string description)
        {
            using var weights = ReadEntry(name);
            try
            {
                module.load(weights);
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or EndOfStreamException or IOException)
            {
                throw Damaged($"weights entry '{name}' does not fit a {description} ({e.Message})");
            }
        }

        /// <summary>An error that says the file is damaged and why.</summary>
        public InvalidDataException Damaged(string why) => new($"Model file '{_path}' is damaged: {why}.");

        /// <inheritdoc/>
        public void Dispose() => _zip.Dispose();
    }
}
