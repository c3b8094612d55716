package distribution

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"go.uber.org/goleak"
	"go.uber.org/zap"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newTestTransfers(t *testing.T, downloads, attempts int) *Transfers {
	t.Helper()
	tr, err := NewTransfers(TransfersOptions{Dir: t.TempDir() + "/staging", MaxDownloads: downloads, MaxUploads: 1, MaxAttempts: attempts,
		Backoff: func(int) time.Duration { return time.Nanosecond }}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// gatedBody is a blob body that blocks until its gate opens.
type gatedBody struct {
	r    io.Reader
	gate <-chan struct{}
	ctx  context.Context
}

func (g *gatedBody) Read(p []byte) (int, error) {
	select {
	case <-g.gate:
	case <-g.ctx.Done():
		return 0, g.ctx.Err()
	}
	return g.r.Read(p)
}
func (g *gatedBody) Close() error { return nil }

func TestDownloadSharedBetweenPulls(t *testing.T) {
	tr := newTestTransfers(t, 3, 1)
	blob := []byte("layer content")
	d := digest.FromBytes(blob)
	gate := make(chan struct{})
	var fetches atomic.Int32
	started := make(chan struct{}, 2)
	fetch := func(ctx context.Context) (io.ReadCloser, int64, error) {
		fetches.Add(1)
		return &gatedBody{r: bytes.NewReader(blob), gate: gate, ctx: ctx}, int64(len(blob)), nil
	}
	var wg sync.WaitGroup
	paths := make([]string, 2)
	releases := make([]func(), 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var once sync.Once
			paths[i], releases[i], errs[i] = tr.Download(context.Background(), d, fetch, func(p BlobProgress) {
				if p.Status == StatusDownloading {
					once.Do(func() { started <- struct{}{} })
				}
			})
		}()
	}
	<-started
	<-started // both watch the one download before any byte is read
	close(gate)
	wg.Wait()
	for i := range 2 {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
	}
	if fetches.Load() != 1 || paths[0] != paths[1] {
		t.Fatalf("fetched %d times, paths %v: want one shared download", fetches.Load(), paths)
	}
	if b, err := os.ReadFile(paths[0]); err != nil || !bytes.Equal(b, blob) {
		t.Fatalf("staged blob: %q, %v", b, err)
	}
	releases[0]()
	if _, err := os.Stat(paths[0]); err != nil {
		t.Errorf("blob removed while still held: %v", err)
	}
	releases[1]()
	releases[1]() // a second call does nothing
	if _, err := os.Stat(paths[0]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("blob kept after the last release: %v", err)
	}
}

func TestDownloadRetriesAndVerifies(t *testing.T) {
	blob := []byte("good")
	d := digest.FromBytes(blob)
	tests := []struct {
		name        string
		giveAttempt int
		giveBodies  []string // one per attempt; "!" fails to open
		wantErr     bool
		wantFetches int32
	}{
		{name: "second attempt succeeds", giveAttempt: 3, giveBodies: []string{"!", "good"}, wantFetches: 2},
		{name: "corrupt then good", giveAttempt: 2, giveBodies: []string{"evil", "good"}, wantFetches: 2},
		{name: "attempts exhausted", giveAttempt: 2, giveBodies: []string{"!", "!", "good"}, wantErr: true, wantFetches: 2},
		{name: "corrupt with one attempt", giveAttempt: 1, giveBodies: []string{"evil"}, wantErr: true, wantFetches: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTestTransfers(t, 1, tt.giveAttempt)
			var n atomic.Int32
			var retried bool
			fetch := func(context.Context) (io.ReadCloser, int64, error) {
				body := tt.giveBodies[n.Add(1)-1]
				if body == "!" {
					return nil, 0, errors.New("connection reset")
				}
				return io.NopCloser(bytes.NewReader([]byte(body))), int64(len(body)), nil
			}
			path, release, err := tr.Download(context.Background(), d, fetch, func(p BlobProgress) {
				if len(p.Status) > 8 && p.Status[:8] == "Retrying" {
					retried = true
				}
			})
			if n.Load() != tt.wantFetches {
				t.Errorf("%d fetches, want %d", n.Load(), tt.wantFetches)
			}
			if tt.wantErr {
				if err == nil {
					release()
					t.Fatal("no error")
				}
				if entries, _ := os.ReadDir(tr.Dir()); len(entries) != 0 {
					t.Errorf("staging holds %d files after a failure", len(entries))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer release()
			if b, _ := os.ReadFile(path); !bytes.Equal(b, blob) {
				t.Errorf("staged %q", b)
			}
			if tt.wantFetches > 1 && tt.giveAttempt > 1 && !retried && tt.giveBodies[0] == "!" {
				t.Error("no Retrying progress")
			}
		})
	}
}

func TestDownloadCancelled(t *testing.T) {
	tr := newTestTransfers(t, 1, 5)
	blob := []byte("slow")
	d := digest.FromBytes(blob)
	gate := make(chan struct{}) // never opens
	reading := make(chan struct{})
	var dlCtx context.Context
	fetch := func(ctx context.Context) (io.ReadCloser, int64, error) {
		dlCtx = ctx
		close(reading)
		return &gatedBody{r: bytes.NewReader(blob), gate: gate, ctx: ctx}, 4, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, _, err := tr.Download(ctx, d, fetch, nil)
		errc <- err
	}()
	<-reading
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	<-dlCtx.Done() // the download stops with its last waiter
	// The next pull starts afresh and succeeds.
	path, release, err := tr.Download(context.Background(), d, func(context.Context) (io.ReadCloser, int64, error) {
		return io.NopCloser(bytes.NewReader(blob)), 4, nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	release()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("released blob still staged")
	}
}

func TestLimiter(t *testing.T) {
	l := newLimiter(1)
	if !l.tryAcquire() || l.tryAcquire() {
		t.Fatal("limit 1 not enforced")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.acquire(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("acquire on a full limiter with a cancelled context: %v", err)
	}
	got := make(chan struct{})
	go func() {
		if err := l.acquire(context.Background()); err == nil {
			close(got)
		}
	}()
	l.setLimit(2) // admits the waiter
	<-got
	l.release()
	l.release()
	if !l.tryAcquire() || !l.tryAcquire() || l.tryAcquire() {
		t.Error("limit 2 not enforced after releases")
	}
}
