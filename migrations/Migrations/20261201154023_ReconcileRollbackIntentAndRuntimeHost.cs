using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace ControlPlane.Migrations.Migrations
{
    /// <inheritdoc />
    public partial class ReconcileRollbackIntentAndRuntimeHost : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<DateTimeOffset>(
                name: "monitored_at",
                table: "deployments",
                type: "timestamp with time zone",
                nullable: true);

            migrationBuilder.AddColumn<double>(
                name: "monitored_seconds",
                table: "deployments",
                type: "double precision",
                nullable: false,
                defaultValue: 0.0);

            migrationBuilder.AddColumn<bool>(
                name: "rollback_automatic",
                table: "deployments",
                type: "boolean",
                nullable: false,
                defaultValue: false);

            migrationBuilder.AddColumn<string>(
                name: "rollback_reason",
                table: "deployments",
                type: "text",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "rollback_refusal",
                table: "deployments",
                type: "text",
                nullable: true);

            migrationBuilder.AddColumn<Guid>(
                name: "rollback_request_id",
                table: "deployments",
                type: "uuid",
                nullable: true);

            migrationBuilder.AddColumn<DateTimeOffset>(
                name: "rollback_requested_at",
                table: "deployments",
                type: "timestamp with time zone",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "rollback_requested_by",
                table: "deployments",
                type: "character varying(128)",
                maxLength: 128,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "rollback_requested_by_kind",
                table: "deployments",
                type: "character varying(16)",
                maxLength: 16,
                nullable: false,
                defaultValue: "System"); // existing releases: no rollback was ever requested

            migrationBuilder.AddColumn<string>(
                name: "runtime_host",
                table: "applications",
                type: "character varying(253)",
                maxLength: 253,
                nullable: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "monitored_at",
                table: "deployments");

            migrationBuilder.DropColumn(
                name: "monitored_seconds",
                table: "deployments");

            migrationBuilder.DropColumn(
                name: "rollback_automatic",
                table: "deployments");

            migrationBuilder.DropColumn(
                name: "rollback_reason",
                table: "deployments");

            migrationBuilder.DropColumn(
                name: "rollback_refusal",
                table: "deployments");

            migrationBuilder.DropColumn(
                name: "rollback_request_id",
                table: "deployments");

            migrationBuilder.DropColumn(
                name: "rollback_requested_at",
                table: "deployments");

            migrationBuilder.DropColumn(
                name: "rollback_requested_by",
                table: "deployments");

            migrationBuilder.DropColumn(
                name: "rollback_requested_by_kind",
                table: "deployments");

            migrationBuilder.DropColumn(
                name: "runtime_host",
                table: "applications");
        }
    }
}
