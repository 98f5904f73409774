using System.Text;

namespace ControlPlane.Core.Hooks;

/// <summary>One statement of a script: its text as written and its words outside comments, strings and quoted names.</summary>
public sealed record SqlStatement(int Number, string Text, IReadOnlyList<string> Words)
{
    /// <summary>The words as keywords compare: upper-cased (a quoted name keeps its case and quotes, so it never equals a keyword).</summary>
    public IReadOnlyList<string> Keywords { get; } = [.. Words.Select(w => w.StartsWith('"') ? w : w.ToUpperInvariant())];

    /// <summary>The statement for a message: whitespace collapsed, at most 120 characters.</summary>
    public string Shown
    {
        get
        {
            var flat = string.Join(' ', Text.Split((char[])[' ', '\t', '\r', '\n'], StringSplitOptions.RemoveEmptyEntries));
            return flat.Length > 120 ? flat[..117] + "..." : flat;
        }
    }
}

/// <summary>
/// Splits PostgreSQL scripts into statements: <c>--</c> and (nested) <c>/* */</c> comments, <c>'…'</c> strings (with
/// <c>''</c>, and backslash escapes in <c>E'…'</c>), <c>"…"</c> identifiers and <c>$tag$…$tag$</c> dollar quoting are
/// skipped, so a <c>;</c> inside them does not end a statement. Words are keywords and names as written outside those;
/// a quoted identifier becomes one word <c>"…"</c> and a string literal the word <c>'</c>.
/// Not handled: psql meta-commands (<c>\i</c>, <c>\copy</c>), <c>COPY … FROM stdin</c> data, and what runs inside function
/// bodies or <c>DO</c> blocks (the guard refuses <c>DO</c> in expand because it cannot see inside).
/// </summary>
public static class SqlScript
{
    public static IReadOnlyList<SqlStatement> Split(string script)
    {
        var statements = new List<SqlStatement>();
        var words = new List<string>();
        var start = 0;
        var i = 0;
        var n = script.Length;

        var textStart = -1; // where the statement's first word is (leading comments are not part of its text)
        void EndStatement(int end)
        {
            var text = script[(textStart < 0 ? start : textStart)..end].Trim();
            textStart = -1;
            if (words.Count > 0) statements.Add(new(statements.Count + 1, text, [.. words]));
            words = [];
            start = end + 1;
        }

        while (i < n)
        {
            var tokenStart = i;
            var before = words.Count;
            Step();
            if (before == 0 && words.Count > 0) textStart = tokenStart;
        }
        EndStatement(n);
        return statements;

        void Step()
        {
            var c = script[i];
            if (c == '-' && i + 1 < n && script[i + 1] == '-')
            {
                while (i < n && script[i] != '\n') i++;
            }
            else if (c == '/' && i + 1 < n && script[i + 1] == '*')
            {
                var depth = 1;
                i += 2;
                while (i < n && depth > 0)
                {
                    if (script[i] == '/' && i + 1 < n && script[i + 1] == '*') { depth++; i += 2; }
                    else if (script[i] == '*' && i + 1 < n && script[i + 1] == '/') { depth--; i += 2; }
                    else i++;
                }
            }
            else if (c == '\'')
            {
                var escapes = i > 0 && (script[i - 1] is 'E' or 'e') && (i < 2 || !IsWordChar(script[i - 2]));
                if (escapes && words.Count > 0 && words[^1] is "E" or "e") words.RemoveAt(words.Count - 1);
                i++;
                while (i < n)
                {
                    if (escapes && script[i] == '\\') { i += 2; continue; }
                    if (script[i] == '\'')
                    {
                        if (i + 1 < n && script[i + 1] == '\'') { i += 2; continue; }
                        break;
                    }
                    i++;
                }
                i++;
                words.Add("'");
            }
            else if (c == '"')
            {
                var sb = new StringBuilder("\"");
                i++;
                while (i < n)
                {
                    if (script[i] == '"')
                    {
                        if (i + 1 < n && script[i + 1] == '"') { sb.Append('"'); i += 2; continue; }
                        break;
                    }
                    sb.Append(script[i++]);
                }
                i++;
                words.Add(sb.Append('"').ToString());
            }
            else if (c == '$' && DollarTag(script, i) is { } tag)
            {
                var close = script.IndexOf(tag, i + tag.Length, StringComparison.Ordinal);
                i = close < 0 ? n : close + tag.Length;
                words.Add("$$");
            }
            else if (c == ';')
            {
                EndStatement(i);
                i++;
            }
            else if (IsWordStart(c))
            {
                var from = i;
                while (i < n && IsWordChar(script[i])) i++;
                words.Add(script[from..i]);
            }
            else if (char.IsWhiteSpace(c)) i++;
            else
            {
                words.Add(c.ToString());
                i++;
            }
        }
    }

    /// <summary>The opening <c>$tag$</c> at <paramref name="at"/>, or null when the <c>$</c> is a parameter like <c>$1</c>.</summary>
    private static string? DollarTag(string s, int at)
    {
        var j = at + 1;
        if (j < s.Length && s[j] == '$') return "$$";
        if (j >= s.Length || !(char.IsLetter(s[j]) || s[j] == '_')) return null;
        while (j < s.Length && (char.IsLetterOrDigit(s[j]) || s[j] == '_')) j++;
        return j < s.Length && s[j] == '$' ? s[at..(j + 1)] : null;
    }

    private static bool IsWordStart(char c) => char.IsLetterOrDigit(c) || c == '_';
    private static bool IsWordChar(char c) => char.IsLetterOrDigit(c) || c is '_' or '$';
}
