using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace ControlPlane.Migrations.Migrations
{
    /// <inheritdoc />
    public partial class TokenOwnersAndUniqueNames : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "owner",
                table: "api_tokens",
                type: "character varying(256)",
                maxLength: 256,
                nullable: true);

            // Names were not unique before: keep the oldest token's name and suffix the others with their id, so the
            // unique index can be created on an existing database (each token keeps working; only its label changes).
            migrationBuilder.Sql("""
                UPDATE api_tokens t SET name = left(t.name, 55) || '-' || left(t.id::text, 8)
                WHERE EXISTS (SELECT 1 FROM api_tokens o WHERE o.name = t.name AND (o.created_at, o.id) < (t.created_at, t.id));
                """);

            migrationBuilder.CreateIndex(
                name: "IX_api_tokens_name",
                table: "api_tokens",
                column: "name",
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_api_tokens_owner",
                table: "api_tokens",
                column: "owner");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_api_tokens_name",
                table: "api_tokens");

            migrationBuilder.DropIndex(
                name: "IX_api_tokens_owner",
                table: "api_tokens");

            migrationBuilder.DropColumn(
                name: "owner",
                table: "api_tokens");
        }
    }
}
