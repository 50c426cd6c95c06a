using System.Text;

namespace Burnrate.Pricing.Internal;

/// <summary>
/// An RFC 4180 reader for catalog CSVs: quoted fields with commas, <c>""</c> escapes and line breaks; LF or CRLF
/// line ends. Reports each record's first line, so diagnostics can point at the file's own line numbers.
/// </summary>
internal static class CsvRecords
{
    /// <summary>The records of <paramref name="text"/>, each with its 1-based starting line; blank lines skipped.</summary>
    public static List<(int Line, string[] Fields)> Read(string text)
    {
        var records = new List<(int, string[])>();
        var fields = new List<string>();
        var field = new StringBuilder();
        int line = 1, recordLine = 1, i = 0;
        bool inQuotes = false, recordHasContent = false;
        while (i < text.Length)
        {
            var c = text[i];
            if (inQuotes)
            {
                if (c == '"')
                {
                    if (i + 1 < text.Length && text[i + 1] == '"')
                    {
                        field.Append('"');
                        i += 2;
                        continue;
                    }

                    inQuotes = false;
                }
                else
                {
                    if (c == '\n')
                        line++;
                    field.Append(c);
                }

                i++;
                continue;
            }

            switch (c)
            {
                case '"':
                    inQuotes = true;
                    recordHasContent = true;
                    break;
                case ',':
                    fields.Add(field.ToString());
                    field.Clear();
                    recordHasContent = true;
                    break;
                case '\r' when i + 1 < text.Length && text[i + 1] == '\n':
                    break;
                case '\n':
                    EndRecord();
                    line++;
                    recordLine = line;
                    break;
                default:
                    field.Append(c);
                    recordHasContent = true;
                    break;
            }

            i++;
        }

        EndRecord();
        return records;

        void EndRecord()
        {
            if (recordHasContent || field.Length > 0)
            {
                fields.Add(field.ToString());
                records.Add((recordLine, fields.ToArray()));
            }

            fields.Clear();
            field.Clear();
            recordHasContent = false;
        }
    }
}
