using System.Text;
using System.Text.Json;

namespace ControlPlane.Core.Audit;

/// <summary>
/// The append-only checkpoint file under the data directory (one JSON checkpoint per line). It is outside the database's
/// reach; the operator ships it elsewhere (log shipping, backup, WORM storage) so that a later verify can be checked
/// against copies nobody with database access could change.
/// </summary>
public sealed class AuditCheckpointFile(string path)
{
    private static readonly JsonSerializerOptions Json = JsonSerializerOptions.Web;
    private readonly Lock _gate = new();

    public string Path { get; } = path;

    public void Append(AuditCheckpointDto checkpoint)
    {
        var line = JsonSerializer.Serialize(checkpoint, Json) + "\n";
        lock (_gate)
        {
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(Path)!);
            using var stream = new FileStream(Path, FileMode.Append, FileAccess.Write, FileShare.Read);
            stream.Write(Encoding.UTF8.GetBytes(line));
            stream.Flush(flushToDisk: true);
        }
    }

    /// <summary>Every line: the checkpoint, or null when the line is not one (damaged file).</summary>
    public IReadOnlyList<(int Line, AuditCheckpointDto? Checkpoint)> ReadAll()
    {
        if (!File.Exists(Path)) return [];
        var result = new List<(int, AuditCheckpointDto?)>();
        var number = 0;
        foreach (var line in File.ReadLines(Path))
        {
            number++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            AuditCheckpointDto? dto;
            try { dto = JsonSerializer.Deserialize<AuditCheckpointDto>(line, Json); }
            catch (JsonException) { dto = null; }
            result.Add((number, dto));
        }
        return result;
    }

    public long? LastSequence()
    {
        long? last = null;
        foreach (var (_, c) in ReadAll())
            if (c is not null && (last is null || c.Sequence > last)) last = c.Sequence;
        return last;
    }
}
