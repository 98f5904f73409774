namespace ControlPlane.Core.Hooks;

/// <summary>A statement an expand script may not run, and why (the live version still uses what it changes).</summary>
public sealed record DdlFinding(int Statement, string Text, string Reason)
{
    public override string ToString() => $"statement {Statement} `{Text}`: {Reason}";
}

/// <summary>
/// Checks a SQL <c>expand</c> script before anything runs. Expand must keep the live version working (it runs while that
/// version serves and must survive a rollback to it), so statements that remove, rename or narrow what exists are refused:
/// DROP (except DROP INDEX), TRUNCATE, RENAME, SET SCHEMA, ALTER COLUMN … TYPE, SET NOT NULL without a default set in
/// the same script, DROP DEFAULT, ADD COLUMN … NOT NULL without a DEFAULT, new table constraints (ADD CONSTRAINT /
/// PRIMARY KEY / UNIQUE / CHECK / FOREIGN KEY / EXCLUDE — they may reject the live version's writes), REVOKE, and DO blocks
/// (their body cannot be checked). All of these are allowed in <c>contract</c>. Not judged: data changes (UPDATE, DELETE),
/// CREATE UNIQUE INDEX on existing tables, function bodies, and statements run indirectly (CALL, EXECUTE).
/// </summary>
public static class DdlGuard
{
    public static IReadOnlyList<DdlFinding> CheckExpand(string script)
    {
        var statements = SqlScript.Split(script);
        var findings = new List<DdlFinding>();
        // Columns given a default anywhere in the script (SET NOT NULL is fine for those: the live version's inserts get it).
        var defaulted = new HashSet<string>(StringComparer.Ordinal);
        foreach (var s in statements)
            foreach (var action in AlterTableActions(s.Keywords))
            {
                if (ColumnAction(action) is ({ } column, var rest) && StartsWith(rest, "SET", "DEFAULT")) defaulted.Add(column);
                if (action.Count > 0 && action[0] == "ADD" && Has(action, "DEFAULT") && AddedColumn(action) is { } added) defaulted.Add(added);
            }
        foreach (var s in statements)
            foreach (var reason in Reasons(s.Keywords, defaulted))
                findings.Add(new(s.Number, s.Shown, Named(reason, s)));
        return findings;
    }

    private static IEnumerable<string> Reasons(IReadOnlyList<string> w, HashSet<string> defaulted)
    {
        switch (w[0])
        {
            case "DROP" when w.Count > 1 && w[1] == "INDEX":
                yield break;
            case "DROP":
                yield return $"DROP {Object(w, 1)} removes what the live version may still use";
                yield break;
            case "TRUNCATE":
                yield return "TRUNCATE deletes the rows the live version reads";
                yield break;
            case "DO":
                yield return "a DO block cannot be checked (its body is opaque to the guard); run it as contract or override";
                yield break;
            case "REVOKE":
                yield return "REVOKE may take privileges the live version needs";
                yield break;
            case "ALTER":
                break;
            default:
                yield break;
        }
        if (Has(w, "RENAME"))
        {
            yield return $"RENAME: the live version still uses the old name (add the new one, copy, and drop the old one in contract)";
            yield break;
        }
        if (HasSequence(w, "SET", "SCHEMA"))
            yield return "SET SCHEMA moves an object away from where the live version looks for it";
        foreach (var action in AlterTableActions(w))
        {
            if (action.Count == 0) continue;
            if (action[0] == "DROP" && !(action.Count > 1 && action[1] == "CONSTRAINT"))
                yield return "DROP COLUMN removes a column the live version may read or write";
            else if (ColumnAction(action) is ({ } column, var rest))
            {
                if (StartsWith(rest, "TYPE") || StartsWith(rest, "SET", "DATA", "TYPE"))
                    yield return $"ALTER COLUMN {column} TYPE changes a column the live version reads and writes";
                else if (StartsWith(rest, "SET", "NOT", "NULL") && !defaulted.Contains(column))
                    yield return $"SET NOT NULL on {column} without a default makes the live version's inserts fail";
                else if (StartsWith(rest, "DROP", "DEFAULT"))
                    yield return $"DROP DEFAULT on {column}: the live version's inserts may rely on it";
            }
            else if (action[0] == "ADD")
            {
                var constraint = action.Count > 1 && action[1] is "CONSTRAINT" or "PRIMARY" or "UNIQUE" or "CHECK" or "FOREIGN" or "EXCLUDE";
                if (constraint)
                    yield return "a new table constraint may reject the live version's writes (add it in contract, or as a nullable column's own)";
                else if (HasSequence(action, "NOT", "NULL") && !Has(action, "DEFAULT"))
                    yield return $"ADD COLUMN {AddedColumn(action)} NOT NULL without a DEFAULT makes the live version's inserts fail";
            }
        }
    }

    /// <summary>The comma-separated actions of <c>ALTER TABLE [IF EXISTS] [ONLY] name action, action …</c> (none for other statements).</summary>
    private static IEnumerable<IReadOnlyList<string>> AlterTableActions(IReadOnlyList<string> w)
    {
        if (w.Count < 3 || w[0] != "ALTER" || w[1] != "TABLE") yield break;
        var i = 2;
        if (i + 1 < w.Count && w[i] == "IF" && w[i + 1] == "EXISTS") i += 2;
        if (i < w.Count && w[i] == "ONLY") i++;
        i = SkipName(w, i);
        var action = new List<string>();
        var depth = 0;
        for (; i < w.Count; i++)
        {
            if (w[i] == "(") depth++;
            else if (w[i] == ")") depth--;
            if (w[i] == "," && depth == 0)
            {
                yield return action;
                action = [];
            }
            else action.Add(w[i]);
        }
        yield return action;
    }

    /// <summary>For <c>ALTER [COLUMN] name …</c>: the column and what follows it.</summary>
    private static (string? Column, IReadOnlyList<string> Tail) ColumnAction(IReadOnlyList<string> action)
    {
        if (action.Count < 2 || action[0] != "ALTER") return (null, []);
        var i = action[1] == "COLUMN" ? 2 : 1;
        return i < action.Count ? (action[i], action.Skip(i + 1).ToList()) : (null, []);
    }

    private static string? AddedColumn(IReadOnlyList<string> action)
    {
        var i = 1;
        if (i < action.Count && action[i] == "COLUMN") i++;
        if (i + 2 < action.Count && action[i] == "IF" && action[i + 1] == "NOT" && action[i + 2] == "EXISTS") i += 3;
        return i < action.Count ? action[i] : null;
    }

    private static int SkipName(IReadOnlyList<string> w, int i)
    {
        // name or schema.name
        i++;
        while (i + 1 < w.Count && w[i] == ".") i += 2;
        return i;
    }

    private static string Object(IReadOnlyList<string> w, int i) =>
        i < w.Count && w[i] == "MATERIALIZED" && i + 1 < w.Count ? "MATERIALIZED " + w[i + 1] : i < w.Count ? w[i] : "";

    private static bool Has(IReadOnlyList<string> w, string word) => w.Contains(word);

    /// <summary>Names in reasons come from the upper-cased keywords; show them as the script wrote them.</summary>
    private static string Named(string reason, SqlStatement s)
    {
        foreach (var (upper, written) in s.Keywords.Zip(s.Words).Where(p => p.First != p.Second && !p.Second.StartsWith('"')).DistinctBy(p => p.First))
            if (!Keyword(upper)) reason = System.Text.RegularExpressions.Regex.Replace(reason, $@"\b{System.Text.RegularExpressions.Regex.Escape(upper)}\b", written.Replace("$", "$$"));
        return reason;
    }

    private static bool Keyword(string word) => word is "ALTER" or "COLUMN" or "TABLE" or "DROP" or "TYPE" or "SET" or "NOT" or "NULL" or "DEFAULT"
        or "ADD" or "RENAME" or "SCHEMA" or "TRUNCATE" or "REVOKE" or "DO" or "VIEW" or "MATERIALIZED" or "INDEX" or "CONSTRAINT" or "DATA" or "ON";

    private static bool HasSequence(IReadOnlyList<string> w, params string[] seq)
    {
        for (var i = 0; i + seq.Length <= w.Count; i++)
            if (seq.Select((s, k) => w[i + k] == s).All(x => x)) return true;
        return false;
    }

    private static bool StartsWith(IReadOnlyList<string> w, params string[] seq) =>
        w.Count >= seq.Length && seq.Select((s, k) => w[k] == s).All(x => x);
}
