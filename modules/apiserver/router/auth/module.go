package auth

import "github.com/wharfd/wharfd/pipeline"

// Module declares the auth router's stage.
var Module = pipeline.Module("auth",
	pipeline.Stage{Step: "5", Name: "auth", Doc: "route POST /auth: registry login through the registry service", Ctor: New},
)
