using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace ControlPlane.Migrations.Migrations
{
    /// <inheritdoc />
    public partial class AuditCheckpointsAnchor : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "audit_checkpoints",
                columns: table => new
                {
                    sequence = table.Column<long>(type: "bigint", nullable: false),
                    hash = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    signed_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    key_id = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false),
                    signature = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_audit_checkpoints", x => x.sequence);
                });

            // Checkpoints are append-only like the events. The serving role is granted INSERT and SELECT only on both
            // tables at start (DatabaseRoles.GrantServingRoleAsync); these triggers also stop the owner by mistake.
            migrationBuilder.Sql("""
                CREATE FUNCTION audit_checkpoints_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                  RAISE EXCEPTION 'audit_checkpoints is append-only: % is not allowed', TG_OP
                    USING ERRCODE = 'insufficient_privilege';
                END $$;
                CREATE TRIGGER audit_checkpoints_no_update_delete BEFORE UPDATE OR DELETE ON audit_checkpoints
                  FOR EACH ROW EXECUTE FUNCTION audit_checkpoints_refuse_change();
                CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
                  FOR EACH STATEMENT EXECUTE FUNCTION audit_checkpoints_refuse_change();
                REVOKE ALL ON audit_events, audit_checkpoints FROM PUBLIC;
                """);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql("DROP FUNCTION IF EXISTS audit_checkpoints_refuse_change() CASCADE;");
            migrationBuilder.DropTable(
                name: "audit_checkpoints");
        }
    }
}
