using System.IO.Compression;
using Microsoft.AspNetCore.ResponseCompression;

namespace ControlPlane.Web.Hosting;

/// <summary>
/// Static assets compressed and cached outside Development. MapStaticAssets serves fingerprinted URLs as immutable with an
/// ETag (304 on revalidation), but run from build output (`dotnet run`, the README's way) ASP.NET Core switches to its
/// development handler by default, which re-reads files and marks every asset no-cache; only Development needs that. The
/// build manifest also has no compressed variant for package assets' fingerprinted URLs (MudBlazor's 627 KB stylesheet),
/// so CSS and JavaScript without a pre-compressed variant are compressed on the way out — only those types: they carry
/// no secrets, so compression over HTTPS leaks nothing (BREACH concerns pages that mix secrets with input).
/// </summary>
public static class StaticAssetCaching
{
    private const string ReloadAtRuntimeKey = "ReloadStaticAssetsAtRuntime";

    public static WebApplicationBuilder AddStaticAssetCaching(this WebApplicationBuilder builder)
    {
        if (!builder.Environment.IsDevelopment() && builder.Configuration[ReloadAtRuntimeKey] is null)
            builder.Configuration[ReloadAtRuntimeKey] = "false";
        builder.Services.AddResponseCompression(o =>
        {
            o.EnableForHttps = true;
            o.MimeTypes = ["text/css", "text/javascript", "application/javascript"];
            o.Providers.Add<BrotliCompressionProvider>();
            o.Providers.Add<GzipCompressionProvider>();
        });
        builder.Services.Configure<BrotliCompressionProviderOptions>(o => o.Level = CompressionLevel.Fastest);
        builder.Services.Configure<GzipCompressionProviderOptions>(o => o.Level = CompressionLevel.Fastest);
        return builder;
    }
}
