# ControlPlane + the demo app. Build: docker build -t controlplane .   Run with PostgreSQL: docker compose up
# The image has no PostgreSQL server binaries, so it always needs ConnectionStrings__ControlPlane.

FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
# Restore first, from the project files only, so the layer stays cached while only sources change.
COPY global.json Directory.Build.props Directory.Packages.props ./
COPY src/ControlPlane.Core/ControlPlane.Core.csproj src/ControlPlane.Core/
COPY src/ControlPlane.Web/ControlPlane.Web.csproj src/ControlPlane.Web/
COPY src/ControlPlane.DemoApp/ControlPlane.DemoApp.csproj src/ControlPlane.DemoApp/
COPY src/ControlPlane.Router/ControlPlane.Router.csproj src/ControlPlane.Router/
COPY migrations/ControlPlane.Migrations.csproj migrations/
RUN dotnet restore src/ControlPlane.Web/ControlPlane.Web.csproj
COPY . .
# The Web project's build copies the demo app and the router only into its bin/ folder, not into publish output: publish all three.
RUN dotnet publish src/ControlPlane.Web -c Release -o /out/app --no-restore -p:UseAppHost=false \
 && dotnet publish src/ControlPlane.DemoApp -c Release -o /out/app/demo-app --no-restore -p:UseAppHost=false \
 && dotnet publish src/ControlPlane.Router -c Release -o /out/app/router --no-restore -p:UseAppHost=false

FROM mcr.microsoft.com/dotnet/aspnet:10.0 AS runtime
# Slot process records and logs (ControlPlane:DataDirectory); must be writable by the non-root user.
RUN mkdir -p /var/lib/controlplane && chown "$APP_UID:$APP_UID" /var/lib/controlplane
WORKDIR /app
COPY --from=build /out/app .
# ASPNETCORE_HTTP_PORTS (8080 in the base image) is cleared: 8080 belongs to the demo router, and URLS decides.
ENV ASPNETCORE_HTTP_PORTS= \
    ASPNETCORE_URLS=http://0.0.0.0:5080 \
    ControlPlane__DataDirectory=/var/lib/controlplane \
    ControlPlane__Demo__AppPath=/app/demo-app/ControlPlane.DemoApp.dll \
    DOTNET_CLI_TELEMETRY_OPTOUT=1
USER $APP_UID
EXPOSE 5080 8080
# WORKDIR /app is the content root, so /app/appsettings.json applies.
ENTRYPOINT ["dotnet", "ControlPlane.Web.dll"]
