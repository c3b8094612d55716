package storage

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/manifest"
	cstorage "go.podman.io/storage"
	"go.uber.org/zap"

	"github.com/wharfd/wharfd/internal/testimage"
)

// benchImageSize and benchLayers shape the generated image of
// BenchmarkLoadSave: 500 MB of incompressible data in 5 layers.
const (
	benchImageSize = 500 << 20
	benchLayers    = 5
)

// benchEnv opens a store with the default driver (overlay where
// supported), as the daemon does, in a temporary directory.
func benchEnv(b *testing.B) *Images {
	b.Helper()
	requireRoot(b)
	dir := b.TempDir()
	s, err := OpenStore(StoreOptions{Root: filepath.Join(dir, "storage"), RunRoot: filepath.Join(dir, "run")}, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := s.Shutdown(); err != nil {
			b.Error(err)
		}
	})
	db, err := NewImageDB(s)
	if err != nil {
		b.Fatal(err)
	}
	refs := NewReferences(db)
	if _, err := MigrateDataRoot(dir, refs, zap.NewNop()); err != nil {
		b.Fatal(err)
	}
	b.Logf("driver %s", s.Driver())
	return NewImageService(db, refs, nil, zap.NewNop())
}

// BenchmarkLoadSave loads a generated 500 MB docker-archive of 5 layers and
// saves it again, reporting load and save throughput in MB/s. Each
// iteration is one whole load (into an empty store) and one whole save;
// the image is deleted between iterations so every load writes every
// layer.
func BenchmarkLoadSave(b *testing.B) {
	svc := benchEnv(b)
	ctx := context.Background()
	var layers [][]byte
	for i := range benchLayers {
		layers = append(layers, testimage.RandomLayer(b, benchImageSize/benchLayers, uint64(i+1)))
	}
	img := testimage.NewImage(b, testimage.Config{}, []string{"bench:500m"}, layers...)
	archive := filepath.Join(b.TempDir(), "bench.tar")
	f, err := os.Create(archive)
	if err != nil {
		b.Fatal(err)
	}
	if err := testimage.WriteDockerArchive(f, img); err != nil {
		b.Fatal(err)
	}
	st, _ := f.Stat()
	f.Close()
	layers = nil
	mb := float64(st.Size()) / 1e6

	var loadTime, saveTime time.Duration
	var saved int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f, err := os.Open(archive)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := svc.Load(ctx, f, true, nil); err != nil {
			b.Fatal(err)
		}
		loadTime += time.Since(start)
		f.Close()

		cw := &countWriter{}
		start = time.Now()
		if err := svc.Save(ctx, []string{"bench:500m"}, cw); err != nil {
			b.Fatal(err)
		}
		saveTime += time.Since(start)
		saved = cw.n

		b.StopTimer()
		if _, err := svc.Delete(ctx, img.ID(), true, true); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(mb*float64(b.N)/loadTime.Seconds(), "load-MB/s")
	b.ReportMetric(float64(saved)/1e6*float64(b.N)/saveTime.Seconds(), "save-MB/s")
}

// listStore is BenchmarkList's store of 1000 images, made once per test
// process (making it takes minutes: the store rewrites its image index
// for every image added) and shut down by TestMain.
var listStore struct {
	once sync.Once
	svc  *Images
	stop func() error
	err  error
}

// BenchmarkList lists a store of 1000 images (sharing one layer), the work
// behind GET /images/json.
func BenchmarkList(b *testing.B) {
	requireRoot(b)
	ctx := context.Background()
	listStore.once.Do(func() {
		dir, err := os.MkdirTemp("", "wharfd-bench-list-")
		if err != nil {
			listStore.err = err
			return
		}
		s, err := OpenStore(StoreOptions{Root: filepath.Join(dir, "storage"), RunRoot: filepath.Join(dir, "run")}, zap.NewNop())
		if err != nil {
			listStore.err = err
			return
		}
		listStore.stop = func() error { err := s.Shutdown(); os.RemoveAll(dir); return err }
		db, err := NewImageDB(s)
		if err != nil {
			listStore.err = err
			return
		}
		refs := NewReferences(db)
		svc := NewImageService(db, refs, nil, zap.NewNop())
		// One image through a real load; 999 more recorded directly with
		// the same layer and their own configs and manifests, in the
		// layout the containers-storage transport writes (a load would
		// take minutes: the store rewrites its image index per write).
		layer := testimage.Tar(b, testimage.Entry{Name: "hello", Body: []byte("hello")})
		first := testimage.NewImage(b, testimage.Config{Labels: map[string]string{"n": "0"}}, []string{"bench/list:0"}, layer)
		start := time.Now()
		if listStore.err = svc.Load(ctx, bytes.NewReader(testimage.DockerArchive(b, first)), true, nil); listStore.err != nil {
			return
		}
		top, err := s.cs.Image(strings.TrimPrefix(first.ID(), "sha256:"))
		if err != nil {
			listStore.err = err
			return
		}
		layerDigest := digest.FromBytes(layer)
		for i := 1; i < 1000; i++ {
			cfg := testimage.NewImage(b, testimage.Config{Labels: map[string]string{"n": strconv.Itoa(i)}}, nil, layer).Config
			cd := digest.FromBytes(cfg)
			man, err := manifest.Schema2FromComponents(
				manifest.Schema2Descriptor{MediaType: manifest.DockerV2Schema2ConfigMediaType, Size: int64(len(cfg)), Digest: cd},
				[]manifest.Schema2Descriptor{{MediaType: manifest.DockerV2SchemaLayerMediaTypeUncompressed, Size: int64(len(layer)), Digest: layerDigest}},
			).Serialize()
			if err != nil {
				listStore.err = err
				return
			}
			md := digest.FromBytes(man)
			if _, err := s.cs.CreateImage(cd.Encoded(), []string{"docker.io/bench/list:" + strconv.Itoa(i)}, top.TopLayer, "", &cstorage.ImageOptions{
				Digest: md,
				BigData: []cstorage.ImageBigDataOption{
					{Key: cd.String(), Data: cfg, Digest: cd},
					{Key: "manifest-" + md.String(), Data: man, Digest: md},
					{Key: cstorage.ImageDigestBigDataKey, Data: man, Digest: md},
				},
			}); err != nil {
				listStore.err = err
				return
			}
		}
		b.Logf("making 1000 images took %v", time.Since(start))
		listStore.svc = svc
	})
	if listStore.err != nil {
		b.Fatal(listStore.err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		got, err := listStore.svc.List(ctx, ListOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if len(got) != 1000 {
			b.Fatalf("%d images", len(got))
		}
	}
}

// countWriter counts and discards.
type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}
