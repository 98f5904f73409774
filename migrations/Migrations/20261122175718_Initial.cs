using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace ControlPlane.Migrations.Migrations
{
    /// <inheritdoc />
    public partial class Initial : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "api_tokens",
                columns: table => new
                {
                    id = table.Column<Guid>(type: "uuid", nullable: false),
                    name = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    role = table.Column<string>(type: "character varying(24)", maxLength: 24, nullable: false),
                    token_hash = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    created_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    created_by = table.Column<string>(type: "text", nullable: false),
                    expires_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    last_used_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    revoked_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_api_tokens", x => x.id);
                });

            migrationBuilder.CreateTable(
                name: "applications",
                columns: table => new
                {
                    id = table.Column<Guid>(type: "uuid", nullable: false),
                    name = table.Column<string>(type: "character varying(63)", maxLength: 63, nullable: false),
                    created_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    live_slot = table.Column<string>(type: "character varying(8)", maxLength: 8, nullable: false),
                    blue_version = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: true),
                    blue_state = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false),
                    blue_healthy = table.Column<bool>(type: "boolean", nullable: false),
                    blue_observed_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    blue_message = table.Column<string>(type: "text", nullable: true),
                    green_version = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: true),
                    green_state = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false),
                    green_healthy = table.Column<bool>(type: "boolean", nullable: false),
                    green_observed_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    green_message = table.Column<string>(type: "text", nullable: true),
                    router_kind = table.Column<string>(type: "character varying(32)", maxLength: 32, nullable: false),
                    router_settings = table.Column<string>(type: "jsonb", nullable: false),
                    deployer_kind = table.Column<string>(type: "character varying(32)", maxLength: 32, nullable: false),
                    deployer_settings = table.Column<string>(type: "jsonb", nullable: false),
                    checks = table.Column<string>(type: "jsonb", nullable: false),
                    policy = table.Column<string>(type: "jsonb", nullable: false),
                    verify_path = table.Column<string>(type: "text", nullable: false),
                    public_url = table.Column<string>(type: "text", nullable: true),
                    rollback_available_until = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    xmin = table.Column<uint>(type: "xid", rowVersion: true, nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_applications", x => x.id);
                });

            migrationBuilder.CreateTable(
                name: "audit_events",
                columns: table => new
                {
                    sequence = table.Column<long>(type: "bigint", nullable: false),
                    occurred_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    actor = table.Column<string>(type: "character varying(128)", maxLength: 128, nullable: false),
                    actor_kind = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false),
                    source_ip = table.Column<string>(type: "text", nullable: true),
                    action = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    application = table.Column<string>(type: "character varying(63)", maxLength: 63, nullable: true),
                    deployment_id = table.Column<Guid>(type: "uuid", nullable: true),
                    before_state = table.Column<string>(type: "text", nullable: true),
                    after_state = table.Column<string>(type: "text", nullable: true),
                    reason = table.Column<string>(type: "text", nullable: true),
                    details = table.Column<string>(type: "text", nullable: true),
                    previous_hash = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    hash = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_audit_events", x => x.sequence);
                });

            migrationBuilder.CreateTable(
                name: "deployments",
                columns: table => new
                {
                    id = table.Column<Guid>(type: "uuid", nullable: false),
                    application_id = table.Column<Guid>(type: "uuid", nullable: false),
                    application_name = table.Column<string>(type: "character varying(63)", maxLength: 63, nullable: false),
                    version = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    from_version = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: true),
                    from_slot = table.Column<string>(type: "character varying(8)", maxLength: 8, nullable: false),
                    target_slot = table.Column<string>(type: "character varying(8)", maxLength: 8, nullable: false),
                    state = table.Column<string>(type: "character varying(24)", maxLength: 24, nullable: false),
                    requested_by = table.Column<string>(type: "text", nullable: false),
                    reason = table.Column<string>(type: "text", nullable: true),
                    required_approvals = table.Column<int>(type: "integer", nullable: false),
                    allow_self_approval = table.Column<bool>(type: "boolean", nullable: false),
                    created_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    updated_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    finished_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    awaiting_approval_since = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    monitoring_until = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    outcome = table.Column<string>(type: "text", nullable: true),
                    cleanup_pending = table.Column<bool>(type: "boolean", nullable: false),
                    next_run_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    lease_owner = table.Column<string>(type: "text", nullable: true),
                    lease_expires_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    xmin = table.Column<uint>(type: "xid", rowVersion: true, nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_deployments", x => x.id);
                    table.ForeignKey(
                        name: "FK_deployments_applications_application_id",
                        column: x => x.application_id,
                        principalTable: "applications",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Restrict);
                });

            migrationBuilder.CreateTable(
                name: "approvals",
                columns: table => new
                {
                    id = table.Column<Guid>(type: "uuid", nullable: false),
                    deployment_id = table.Column<Guid>(type: "uuid", nullable: false),
                    by = table.Column<string>(type: "character varying(128)", maxLength: 128, nullable: false),
                    at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    comment = table.Column<string>(type: "text", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_approvals", x => x.id);
                    table.ForeignKey(
                        name: "FK_approvals_deployments_deployment_id",
                        column: x => x.deployment_id,
                        principalTable: "deployments",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "deployment_steps",
                columns: table => new
                {
                    id = table.Column<Guid>(type: "uuid", nullable: false),
                    deployment_id = table.Column<Guid>(type: "uuid", nullable: false),
                    name = table.Column<string>(type: "character varying(32)", maxLength: 32, nullable: false),
                    order = table.Column<int>(type: "integer", nullable: false),
                    state = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false),
                    started_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    finished_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    message = table.Column<string>(type: "text", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_deployment_steps", x => x.id);
                    table.ForeignKey(
                        name: "FK_deployment_steps_deployments_deployment_id",
                        column: x => x.deployment_id,
                        principalTable: "deployments",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "IX_api_tokens_token_hash",
                table: "api_tokens",
                column: "token_hash",
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_applications_name",
                table: "applications",
                column: "name",
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_approvals_deployment_id_by",
                table: "approvals",
                columns: new[] { "deployment_id", "by" },
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_audit_events_action_sequence",
                table: "audit_events",
                columns: new[] { "action", "sequence" });

            migrationBuilder.CreateIndex(
                name: "IX_audit_events_actor_sequence",
                table: "audit_events",
                columns: new[] { "actor", "sequence" });

            migrationBuilder.CreateIndex(
                name: "IX_audit_events_application_sequence",
                table: "audit_events",
                columns: new[] { "application", "sequence" });

            migrationBuilder.CreateIndex(
                name: "IX_audit_events_deployment_id",
                table: "audit_events",
                column: "deployment_id");

            migrationBuilder.CreateIndex(
                name: "IX_audit_events_occurred_at",
                table: "audit_events",
                column: "occurred_at");

            migrationBuilder.CreateIndex(
                name: "IX_deployment_steps_deployment_id_name",
                table: "deployment_steps",
                columns: new[] { "deployment_id", "name" },
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_deployments_application_id_created_at",
                table: "deployments",
                columns: new[] { "application_id", "created_at" });

            migrationBuilder.CreateIndex(
                name: "IX_deployments_next_run_at",
                table: "deployments",
                column: "next_run_at",
                filter: "next_run_at IS NOT NULL");

            migrationBuilder.CreateIndex(
                name: "ux_deployments_one_in_flight",
                table: "deployments",
                column: "application_id",
                unique: true,
                filter: "state IN ('Queued', 'Deploying', 'Verifying', 'AwaitingApproval', 'ReadyToSwitch', 'Switching', 'Monitoring')");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "api_tokens");

            migrationBuilder.DropTable(
                name: "approvals");

            migrationBuilder.DropTable(
                name: "audit_events");

            migrationBuilder.DropTable(
                name: "deployment_steps");

            migrationBuilder.DropTable(
                name: "deployments");

            migrationBuilder.DropTable(
                name: "applications");
        }
    }
}
