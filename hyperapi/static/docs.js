// Renders the OpenAPI document named by this script tag's data-spec with Swagger UI.
window.addEventListener("load", function () {
  var spec = document.getElementById("docs-loader").getAttribute("data-spec");
  window.ui = SwaggerUIBundle({ url: spec, dom_id: "#swagger-ui", deepLinking: true });
});
