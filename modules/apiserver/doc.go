// Package apiserver serves the Docker Engine API: seed steps 2.2 (the API
// listeners: unix, tcp with TLS, fd://), 4 (middlewares: version, CORS,
// logging, panic recovery) and the compilation of every router's routes
// (step 5) onto httprouter. Routers live in router/<resource>/ and
// contribute their routes to the "routes" value group as Routes.
package apiserver
