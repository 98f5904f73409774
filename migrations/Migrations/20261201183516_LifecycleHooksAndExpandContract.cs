using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace ControlPlane.Migrations.Migrations
{
    /// <inheritdoc />
    public partial class LifecycleHooksAndExpandContract : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "held_hook",
                table: "deployments",
                type: "character varying(32)",
                maxLength: 32,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "lifecycle",
                table: "deployments",
                type: "jsonb",
                nullable: true);

            migrationBuilder.AddColumn<int>(
                name: "attempts",
                table: "deployment_steps",
                type: "integer",
                nullable: false,
                defaultValue: 0);

            migrationBuilder.AddColumn<int>(
                name: "exit_status",
                table: "deployment_steps",
                type: "integer",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "output",
                table: "deployment_steps",
                type: "text",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "hooks",
                table: "applications",
                type: "jsonb",
                nullable: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "held_hook",
                table: "deployments");

            migrationBuilder.DropColumn(
                name: "lifecycle",
                table: "deployments");

            migrationBuilder.DropColumn(
                name: "attempts",
                table: "deployment_steps");

            migrationBuilder.DropColumn(
                name: "exit_status",
                table: "deployment_steps");

            migrationBuilder.DropColumn(
                name: "output",
                table: "deployment_steps");

            migrationBuilder.DropColumn(
                name: "hooks",
                table: "applications");
        }
    }
}
