package storage

import "github.com/wharfd/wharfd/pipeline"

// Module declares the storage stages.
var Module = pipeline.Module("storage",
	pipeline.Stage{Step: "3.11", Name: "graphdriver", Doc: "the containers/storage store (overlay, vfs fallback)", Ctor: NewStore},
	pipeline.Stage{Step: "3.14", Name: "imagedb", Doc: "image configs, manifests, history and sizes", Ctor: NewImageDB},
	pipeline.Stage{Step: "3.19", Name: "reference-store", Doc: "tags and digests mapped to image IDs", Ctor: NewReferences},
	pipeline.Stage{Step: "3.20", Name: "migration", Doc: "on-disk schema version checked and migrated", Ctor: Migrate},
	pipeline.Stage{Name: "images", Doc: "the image service: import, load, save, tag, delete, prune", Ctor: NewImages},
)
