package distribution

import "github.com/wharfd/wharfd/pipeline"

// Module declares the distribution stages.
var Module = pipeline.Module("distribution",
	pipeline.Stage{Step: "3.13", Name: "transfers", Doc: "layer downloads/uploads: bounded, retried with backoff, shared between pulls; reloadable", Ctor: NewTransfersStage},
	pipeline.Stage{Step: "3.17", Name: "distribution-metadata", Doc: "blob ↔ repository metadata (known locations, compressed ↔ uncompressed digests)", Ctor: NewMetadata},
	pipeline.Stage{Name: "distribution", Doc: "pull and push through the registry service, transfers and the image service", Ctor: NewService},
)
