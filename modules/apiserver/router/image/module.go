package image

import "github.com/wharfd/wharfd/pipeline"

// Module declares the image router's stage.
var Module = pipeline.Module("image",
	pipeline.Stage{Step: "5", Name: "image", Doc: "routes /images (list, inspect, history, import, load, save, tag, remove, prune); images' /info and /system/df share", Ctor: New},
)
