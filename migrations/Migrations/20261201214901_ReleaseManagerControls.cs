using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace ControlPlane.Migrations.Migrations
{
    /// <inheritdoc />
    public partial class ReleaseManagerControls : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<int>(
                name: "hold_extension_seconds",
                table: "deployments",
                type: "integer",
                nullable: false,
                defaultValue: 0);

            migrationBuilder.AddColumn<string>(
                name: "promote_reason",
                table: "deployments",
                type: "text",
                nullable: true);

            migrationBuilder.AddColumn<DateTimeOffset>(
                name: "promote_requested_at",
                table: "deployments",
                type: "timestamp with time zone",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "promote_requested_by",
                table: "deployments",
                type: "character varying(128)",
                maxLength: 128,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "promote_requested_by_kind",
                table: "deployments",
                type: "character varying(16)",
                maxLength: 16,
                nullable: false,
                defaultValue: "System"); // existing releases: no early end was ever asked for
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "hold_extension_seconds",
                table: "deployments");

            migrationBuilder.DropColumn(
                name: "promote_reason",
                table: "deployments");

            migrationBuilder.DropColumn(
                name: "promote_requested_at",
                table: "deployments");

            migrationBuilder.DropColumn(
                name: "promote_requested_by",
                table: "deployments");

            migrationBuilder.DropColumn(
                name: "promote_requested_by_kind",
                table: "deployments");
        }
    }
}
