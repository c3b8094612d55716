package main

import (
	"testing"

	"github.com/wharfd/wharfd/internal/testimage"
)

// benchLayers and benchLayerSize make the benchmark image: 6 layers of
// 50 MiB of random data (incompressible, so the registry serves 300 MiB).
const (
	benchLayers    = 6
	benchLayerSize = 50 << 20
)

// BenchmarkRegistryPull measures docker pull throughput (MB/s of layer
// data) of a 300 MiB, 6-layer image from a local registry: with the
// default max-concurrent-downloads (3) and with 1. Each iteration removes
// the image first (not timed), so every pull downloads, verifies and
// extracts all six layers.
func BenchmarkRegistryPull(b *testing.B) {
	reg := startRegistry(b, registryOptions{})
	for _, bc := range []struct {
		name   string
		config string
	}{
		{name: "default", config: `{}`},
		{name: "max-concurrent-downloads=1", config: `{"max-concurrent-downloads": 1}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			d := startRegistryDaemon(b, bc.config)
			ref := reg.addr + "/bench/big:1"
			if _, _, code := d.docker(nil, "pull", "-q", ref); code != 0 {
				// First sub-benchmark: generate and push the image.
				var layers [][]byte
				for i := range benchLayers {
					layers = append(layers, testimage.RandomLayer(b, benchLayerSize, uint64(100+i)))
				}
				img := testimage.NewImage(b, testimage.Config{Cmd: []string{"sh"}}, []string{ref}, layers...)
				d.load(img)
				d.ok("push", ref)
			}
			b.SetBytes(benchLayers * benchLayerSize)
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				d.ok("rmi", ref)
				b.StartTimer()
				d.ok("pull", "-q", ref)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Seconds())/float64(b.N), "s/pull")
		})
	}
}
