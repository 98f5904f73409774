using ControlPlane.Core.Hooks;

namespace ControlPlane.UnitTests.Hooks;

public sealed class DdlGuardTests
{
    [Theory]
    [InlineData("DROP TABLE orders", "DROP TABLE")]
    [InlineData("drop table if exists legacy cascade", "DROP TABLE")]
    [InlineData("DROP VIEW order_totals", "DROP VIEW")]
    [InlineData("DROP MATERIALIZED VIEW mv", "DROP MATERIALIZED VIEW")]
    [InlineData("DROP SCHEMA billing CASCADE", "DROP SCHEMA")]
    [InlineData("ALTER TABLE orders DROP COLUMN customer_name", "DROP COLUMN")]
    [InlineData("ALTER TABLE public.orders DROP customer_name", "DROP COLUMN")]
    [InlineData("ALTER TABLE IF EXISTS ONLY orders ADD COLUMN note text, DROP COLUMN IF EXISTS x", "DROP COLUMN")]
    [InlineData("ALTER TABLE orders RENAME COLUMN customer_name TO customer", "RENAME")]
    [InlineData("ALTER TABLE orders RENAME TO purchases", "RENAME")]
    [InlineData("ALTER INDEX ix_a RENAME TO ix_b", "RENAME")]
    [InlineData("ALTER TABLE orders ALTER COLUMN amount TYPE bigint", "ALTER COLUMN amount TYPE")]
    [InlineData("ALTER TABLE orders ALTER amount SET DATA TYPE numeric(12,2)", "ALTER COLUMN amount TYPE")]
    [InlineData("ALTER TABLE orders ALTER COLUMN email SET NOT NULL", "SET NOT NULL on email")]
    [InlineData("ALTER TABLE orders ALTER COLUMN email DROP DEFAULT", "DROP DEFAULT")]
    [InlineData("ALTER TABLE orders ADD COLUMN email text NOT NULL", "ADD COLUMN email NOT NULL without a DEFAULT")]
    [InlineData("ALTER TABLE orders ADD CONSTRAINT amount_positive CHECK (amount > 0)", "table constraint")]
    [InlineData("ALTER TABLE orders ADD UNIQUE (email)", "table constraint")]
    [InlineData("ALTER TABLE orders SET SCHEMA archive", "SET SCHEMA")]
    [InlineData("TRUNCATE orders", "TRUNCATE")]
    [InlineData("REVOKE SELECT ON orders FROM shop", "REVOKE")]
    [InlineData("DO $$ BEGIN EXECUTE 'DROP TABLE orders'; END $$", "DO block")]
    public void Destructive_statements_are_refused_in_expand_and_named(string sql, string expected)
    {
        var finding = Assert.Single(DdlGuard.CheckExpand(sql));
        Assert.Contains(expected, finding.Reason);
        Assert.Equal(1, finding.Statement);
    }

    [Theory]
    [InlineData("ALTER TABLE orders ADD COLUMN customer_email text")]
    [InlineData("ALTER TABLE orders ADD COLUMN status text NOT NULL DEFAULT 'new'")]
    [InlineData("CREATE TABLE order_notes (id bigint PRIMARY KEY, body text NOT NULL)")]
    [InlineData("CREATE INDEX CONCURRENTLY ix_orders_email ON orders (customer_email)")]
    [InlineData("DROP INDEX ix_old")]
    [InlineData("ALTER TABLE orders ALTER COLUMN status SET DEFAULT 'new'; ALTER TABLE orders ALTER COLUMN status SET NOT NULL")]
    [InlineData("ALTER TABLE orders DROP CONSTRAINT amount_positive")]
    [InlineData("UPDATE orders SET customer_email = lower(customer_name) WHERE customer_email IS NULL")]
    [InlineData("GRANT SELECT ON orders TO reporting")]
    public void Additive_statements_pass(string sql) => Assert.Empty(DdlGuard.CheckExpand(sql));

    [Fact]
    public void Keywords_inside_comments_strings_quoted_names_and_dollar_quotes_do_not_count()
    {
        const string sql = """
            -- DROP TABLE orders; this is a comment
            /* DROP TABLE orders; /* nested */ still a comment; */
            INSERT INTO audit_note (text) VALUES ('DROP TABLE orders; it''s a string');
            INSERT INTO audit_note (text) VALUES (E'escaped \' DROP TABLE x;');
            CREATE FUNCTION f() RETURNS text AS $body$ SELECT 'DROP TABLE orders;' $body$ LANGUAGE sql;
            ALTER TABLE "DROP" ADD COLUMN "RENAME" text;
            """;
        Assert.Empty(DdlGuard.CheckExpand(sql));
        Assert.Equal(4, SqlScript.Split(sql).Count);
    }

    [Fact]
    public void Every_refused_statement_of_a_script_is_named_with_its_number()
    {
        var findings = DdlGuard.CheckExpand("""
            ALTER TABLE orders ADD COLUMN customer_email text;
            UPDATE orders SET customer_email = customer_name;
            ALTER TABLE orders DROP COLUMN customer_name;
            DROP TABLE legacy_orders;
            """);
        Assert.Equal([3, 4], findings.Select(f => f.Statement));
        Assert.Equal("ALTER TABLE orders DROP COLUMN customer_name", findings[0].Text);
        Assert.Contains("statement 3 `ALTER TABLE orders DROP COLUMN customer_name`", findings[0].ToString());
    }
}
