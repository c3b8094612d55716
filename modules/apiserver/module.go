package apiserver

import "github.com/wharfd/wharfd/pipeline"

// Module declares the API server's stages: the listeners (2.2, bound
// early), the middlewares (4), the compiled route table (5) and the HTTP
// server (2.2, serving last).
var Module = pipeline.Module("apiserver",
	pipeline.Stage{Step: "2.2", Name: "listeners", Doc: "API sockets bound early (unix 0660 + group, tcp with TLS, fd://); clients wait in the backlog", Ctor: NewListeners},
	pipeline.Stage{Step: "4", Name: "middlewares", Doc: "version check and headers, CORS, debug request log, panic recovery", Ctor: NewMiddlewares},
	pipeline.Stage{Step: "5", Name: "routes", Doc: "every router's routes compiled onto httprouter", Ctor: NewRoutes},
	pipeline.Stage{Step: "2.2", Name: "apiserver", Doc: "the HTTP server on the listeners, started last; then READY=1", Ctor: NewServer},
)
