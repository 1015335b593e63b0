// Renders this host's /openapi.json with Swagger UI, from files served beside this one: nothing is fetched
// from another origin (no CDN, no online validator).
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
