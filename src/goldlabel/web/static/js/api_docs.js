// Starts Swagger UI on /api/v1/docs. An external file, not an inline script: the page is under
// the same Content-Security-Policy (script-src 'self') as every other page.
/* global SwaggerUIBundle */
window.ui = SwaggerUIBundle({
  url: document.body.dataset.openapiUrl,
  dom_id: '#swagger-ui',
  layout: 'BaseLayout',
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
