using System.Text;

namespace ControlPlane.E2ETests.Infrastructure;

/// <summary>A strict RFC 4180 reader, so the test checks the exported file independently of the writer's library.</summary>
public static class Csv
{
    public static List<Dictionary<string, string>> Records(string text)
    {
        var rows = Rows(text);
        var header = rows[0];
        return rows.Skip(1).Select(r =>
        {
            Assert.Equal(header.Count, r.Count);
            return header.Zip(r).ToDictionary(p => p.First, p => p.Second);
        }).ToList();
    }

    private static List<List<string>> Rows(string text)
    {
        var rows = new List<List<string>>();
        var row = new List<string>();
        var field = new StringBuilder();
        var quoted = false;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < text.Length && text[i + 1] == '"') { field.Append('"'); i++; }
                else if (c == '"') quoted = false;
                else field.Append(c);
            }
            else if (c == '"') quoted = true;
            else if (c == ',') { row.Add(field.ToString()); field.Clear(); }
            else if (c is '\r' or '\n')
            {
                if (c == '\r' && i + 1 < text.Length && text[i + 1] == '\n') i++;
                row.Add(field.ToString()); field.Clear();
                rows.Add(row); row = [];
            }
            else field.Append(c);
        }
        if (field.Length > 0 || row.Count > 0) { row.Add(field.ToString()); rows.Add(row); }
        return rows;
    }
}

public static class Selectors
{
    /// <summary>The audit explorer's actor filter (MudBlazor may put the test id on the input or on its wrapper).</summary>
    public const string Actor = "input[data-testid=filter-actor], [data-testid=filter-actor] input";
}
