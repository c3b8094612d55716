package distribution

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/docker/distribution/registry/api/errcode"
	v2 "github.com/docker/distribution/registry/api/v2"
	"github.com/opencontainers/go-digest"
	"go.uber.org/zap"
	"golang.org/x/sync/semaphore"
)

// Layer download statuses, dockerd's words, which the docker CLI draws.
const (
	StatusWaiting          = "Waiting"
	StatusDownloading      = "Downloading"
	StatusVerifying        = "Verifying Checksum"
	StatusDownloadComplete = "Download complete"
)

// progressEvery is how often byte progress is reported per blob.
const progressEvery = 100 * time.Millisecond

// BlobProgress is one report of a blob download: Status is one of the
// Status constants or "Retrying in N seconds"; Current and Total are
// bytes done and expected (Total 0: unknown), set with StatusDownloading.
type BlobProgress struct {
	Status         string
	Current, Total int64
}

// Fetcher opens a blob for reading from its registry: the body, its size
// (-1 when unknown) or an error. Each attempt calls it again.
type Fetcher func(ctx context.Context) (io.ReadCloser, int64, error)

// TransfersOptions configure Transfers.
type TransfersOptions struct {
	// Dir is where downloaded blobs are staged until they are stored;
	// it is emptied when Transfers starts and removed by Close.
	Dir string
	// MaxDownloads is the number of blobs downloaded at once, daemon-
	// wide, as dockerd's max-concurrent-downloads (default 3).
	MaxDownloads int
	// MaxUploads is the number of blobs uploaded at once, daemon-wide
	// (max-concurrent-uploads, default 5).
	MaxUploads int
	// MaxAttempts is the number of tries of each blob download
	// (max-download-attempts, default 5).
	MaxAttempts int
	// Backoff is the wait before retry number attempt (1, 2, …); nil is
	// dockerd's: 5 s × attempt.
	Backoff func(attempt int) time.Duration
}

// Transfers is stage 3.13's transfer manager: blob downloads bounded,
// retried and shared, and the bound on uploads. Two pulls that need the
// same blob at once download it once: the second joins the first's
// download and sees its progress. A download stops when every pull
// waiting for it has gone (its client went away), and what it wrote is
// removed. It is safe for concurrent use.
type Transfers struct {
	dir       string
	downloads *limiter
	log       *zap.Logger

	mu       sync.Mutex
	uploads  *semaphore.Weighted
	attempts int
	backoff  func(int) time.Duration
	blobs    map[digest.Digest]*blob
}

// blob is one blob being downloaded or held staged.
type blob struct {
	digest digest.Digest
	path   string
	done   chan struct{}
	err    error // set before done is closed
	cancel context.CancelCauseFunc
	owner  int // the watcher whose Fetcher downloads
	refs   int // watchers, then holders of the staged file
	// watchers get each report; last is replayed to those joining.
	watchers map[int]func(BlobProgress)
	last     *BlobProgress
	next     int
}

// errOwnerGone ends a shared download whose Fetcher's pull went away; the
// pulls still waiting start it again with their own.
var errOwnerGone = errors.New("the pull that started this download went away")

// NewTransfers returns a transfer manager staging blobs in o.Dir.
func NewTransfers(o TransfersOptions, log *zap.Logger) (*Transfers, error) {
	if o.Dir == "" {
		return nil, fmt.Errorf("transfers: no staging directory given")
	}
	// Whatever a previous run left there is of no use.
	if err := os.RemoveAll(o.Dir); err != nil {
		return nil, fmt.Errorf("transfers: %w", err)
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("transfers: %w", err)
	}
	t := &Transfers{dir: o.Dir, downloads: newLimiter(o.MaxDownloads), log: log, blobs: map[digest.Digest]*blob{}}
	t.SetLimits(o.MaxDownloads, o.MaxUploads, o.MaxAttempts)
	t.backoff = o.Backoff
	if t.backoff == nil {
		t.backoff = func(attempt int) time.Duration { return time.Duration(attempt) * 5 * time.Second }
	}
	return t, nil
}

// SetLimits changes the download and upload bounds and the download
// attempts (values below 1 count as 1); downloads waiting or running keep
// going under the new bound, uploads already started under the old one.
func (t *Transfers) SetLimits(downloads, uploads, attempts int) {
	t.downloads.setLimit(downloads)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.uploads = semaphore.NewWeighted(int64(max(uploads, 1)))
	t.attempts = max(attempts, 1)
}

// UploadSemaphore returns the daemon-wide bound on blob uploads, for
// go.podman.io/image's copy.Options.ConcurrentBlobCopiesSemaphore.
func (t *Transfers) UploadSemaphore() *semaphore.Weighted {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.uploads
}

// Dir returns the staging directory.
func (t *Transfers) Dir() string { return t.dir }

// Close removes the staging directory. Downloads must have ended.
func (t *Transfers) Close() error {
	if err := os.RemoveAll(t.dir); err != nil {
		return fmt.Errorf("transfers: %w", err)
	}
	return nil
}

// Download returns the path of the staged blob d, downloading it with
// fetch unless another pull is doing so already (then it waits for that
// download) or holds it staged. watch receives the download's progress.
// The caller must call release when done with the file; the file is
// removed once no one holds it. A blob whose content does not match d is
// an error; failed attempts are retried with backoff up to the attempt
// limit, except for errors a retry cannot mend (denied, unknown blob, no
// space). When ctx ends Download returns its error; the download itself
// stops once no pull waits for it.
func (t *Transfers) Download(ctx context.Context, d digest.Digest, fetch Fetcher, watch func(BlobProgress)) (path string, release func(), err error) {
	if err := d.Validate(); err != nil {
		return "", nil, fmt.Errorf("blob digest: %w", err)
	}
	if watch == nil {
		watch = func(BlobProgress) {}
	}
	for {
		t.mu.Lock()
		b := t.blobs[d]
		id := 0
		if b == nil {
			b = &blob{digest: d, path: filepath.Join(t.dir, d.Algorithm().String()+"-"+d.Encoded()), done: make(chan struct{}), watchers: map[int]func(BlobProgress){}}
			t.blobs[d] = b
			dctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
			b.cancel = cancel
			id = b.add(watch)
			b.owner = id
			go t.run(dctx, b, fetch)
		} else {
			id = b.add(watch)
			if b.last != nil {
				watch(*b.last)
			}
		}
		b.refs++
		t.mu.Unlock()

		select {
		case <-b.done:
			t.mu.Lock()
			delete(b.watchers, id)
			t.mu.Unlock()
			if b.err == nil {
				var once sync.Once
				return b.path, func() { once.Do(func() { t.unref(b) }) }, nil
			}
			t.unref(b)
			if (errors.Is(b.err, errOwnerGone) || errors.Is(b.err, context.Canceled)) && ctx.Err() == nil {
				// Stopped for pulls that went away, not for this one:
				// start it again, with this pull's fetcher.
				continue
			}
			return "", nil, b.err
		case <-ctx.Done():
			t.mu.Lock()
			delete(b.watchers, id)
			b.refs--
			last := false
			select {
			case <-b.done:
				t.dropLocked(b)
			default:
				if b.refs == 0 {
					b.cancel(ctx.Err())
					last = true
				} else if id == b.owner {
					b.cancel(errOwnerGone)
				}
			}
			t.mu.Unlock()
			if last {
				// The download was this pull's alone: wait until it
				// has stopped and removed what it wrote.
				<-b.done
			}
			return "", nil, ctx.Err()
		}
	}
}

// add registers a watcher; called with t.mu held.
func (b *blob) add(w func(BlobProgress)) int {
	b.next++
	b.watchers[b.next] = w
	return b.next
}

// unref drops one hold on b, removing its file with the last.
func (t *Transfers) unref(b *blob) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b.refs--
	t.dropLocked(b)
}

// dropLocked forgets a finished blob no one holds, and removes its file.
func (t *Transfers) dropLocked(b *blob) {
	if b.refs > 0 {
		return
	}
	if t.blobs[b.digest] == b {
		delete(t.blobs, b.digest)
	}
	if b.err == nil {
		os.Remove(b.path)
	}
}

// notify sends p to b's watchers.
func (t *Transfers) notify(b *blob, p BlobProgress) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b.last = &p
	for _, w := range b.watchers {
		w(p)
	}
}

// run downloads b: waits for a download slot, then tries up to the
// attempt limit.
func (t *Transfers) run(ctx context.Context, b *blob, fetch Fetcher) {
	err := t.download(ctx, b, fetch)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			err = cause
		}
	}
	t.mu.Lock()
	b.err = err
	if err != nil && t.blobs[b.digest] == b {
		delete(t.blobs, b.digest) // the next pull starts afresh
	}
	close(b.done)
	t.mu.Unlock()
	b.cancel(nil)
}

func (t *Transfers) download(ctx context.Context, b *blob, fetch Fetcher) error {
	if !t.downloads.tryAcquire() {
		t.notify(b, BlobProgress{Status: StatusWaiting})
		if err := t.downloads.acquire(ctx); err != nil {
			return err
		}
	}
	defer t.downloads.release()
	t.mu.Lock()
	attempts := t.attempts
	t.mu.Unlock()
	for attempt := 1; ; attempt++ {
		err := t.fetchOnce(ctx, b, fetch)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || attempt >= attempts || !retryable(err) {
			return err
		}
		t.log.Info("blob download failed, retrying", zap.String("digest", b.digest.String()), zap.Int("attempt", attempt), zap.Error(err))
		delay := t.backoff(attempt)
		for delay > 0 {
			secs := int((delay + time.Second - 1) / time.Second)
			plural := "s"
			if secs == 1 {
				plural = ""
			}
			t.notify(b, BlobProgress{Status: fmt.Sprintf("Retrying in %d second%s", secs, plural)})
			step := min(delay, time.Second)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(step):
			}
			delay -= step
		}
	}
}

// fetchOnce makes one attempt: the blob into a temporary file, checked
// against its digest, then renamed into place.
func (t *Transfers) fetchOnce(ctx context.Context, b *blob, fetch Fetcher) (err error) {
	rc, size, err := fetch(ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.CreateTemp(t.dir, "partial-")
	if err != nil {
		return fmt.Errorf("stage blob: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	total := max(size, 0)
	verifier := b.digest.Verifier()
	var done int64
	last := time.Time{}
	buf := make([]byte, 256<<10)
	t.notify(b, BlobProgress{Status: StatusDownloading, Total: total})
	for {
		n, rerr := rc.Read(buf)
		if n > 0 {
			if _, err := f.Write(buf[:n]); err != nil {
				return fmt.Errorf("stage blob: %w", err)
			}
			verifier.Write(buf[:n]) //nolint:errcheck // hashes never fail
			done += int64(n)
			if now := time.Now(); now.Sub(last) >= progressEvery {
				last = now
				t.notify(b, BlobProgress{Status: StatusDownloading, Current: done, Total: total})
			}
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("read blob %s: %w", b.digest, rerr)
		}
	}
	t.notify(b, BlobProgress{Status: StatusVerifying})
	if !verifier.Verified() {
		return fmt.Errorf("blob %s: downloaded content does not match its digest", b.digest)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("stage blob: %w", err)
	}
	if err := os.Rename(f.Name(), b.path); err != nil {
		return fmt.Errorf("stage blob: %w", err)
	}
	t.notify(b, BlobProgress{Status: StatusDownloadComplete})
	return nil
}

// retryable reports whether another attempt may succeed after err, as
// dockerd's retryOnError: not for a denial, an unknown blob or name, too
// many requests, or a full disk.
func retryable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, syscall.ENOSPC) {
		return false
	}
	var ec errcode.Error
	if errors.As(err, &ec) {
		switch ec.Code {
		case errcode.ErrorCodeUnauthorized, errcode.ErrorCodeUnsupported, errcode.ErrorCodeDenied,
			errcode.ErrorCodeTooManyRequests, v2.ErrorCodeNameUnknown, v2.ErrorCodeBlobUnknown:
			return false
		}
	}
	return !strings.Contains(err.Error(), "no space left on device")
}
