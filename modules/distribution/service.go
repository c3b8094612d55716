package distribution

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/moby/moby/api/types/events"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wharfd/wharfd/modules/config"
	eventbus "github.com/wharfd/wharfd/modules/events"
	"github.com/wharfd/wharfd/modules/host"
	"github.com/wharfd/wharfd/modules/registry"
	"github.com/wharfd/wharfd/modules/storage"
)

// TransfersParams are what stage 3.13 needs.
type TransfersParams struct {
	fx.In
	// Config gives max-concurrent-downloads, max-concurrent-uploads and
	// max-download-attempts at boot.
	Config *config.Config
	// TmpDir (3.8) holds the staging directory, "distribution".
	TmpDir    host.TmpDir
	Log       *zap.Logger
	Lifecycle fx.Lifecycle
	// Live, when wired, applies reloaded limits (SIGHUP).
	Live *config.Live `optional:"true"`
}

// NewTransfersStage is stage 3.13 transfers: a Transfers with the
// configured limits, staging under <tmpdir>/distribution, and the limits
// reloaded on SIGHUP. Its stop hook removes the staging directory.
func NewTransfersStage(p TransfersParams) (*Transfers, error) {
	t, err := NewTransfers(TransfersOptions{
		Dir:          filepath.Join(p.TmpDir.Path, "distribution"),
		MaxDownloads: p.Config.MaxConcurrentDownloads,
		MaxUploads:   p.Config.MaxConcurrentUploads,
		MaxAttempts:  p.Config.MaxDownloadAttempts,
	}, p.Log.With(zap.String("module", "distribution")))
	if err != nil {
		return nil, err
	}
	unsubscribe := func() {}
	if p.Live != nil {
		unsubscribe = p.Live.Subscribe(func(_, cfg *config.Config, changed []string) {
			for _, k := range []string{"max-concurrent-downloads", "max-concurrent-uploads", "max-download-attempts"} {
				if slices.Contains(changed, k) {
					t.SetLimits(cfg.MaxConcurrentDownloads, cfg.MaxConcurrentUploads, cfg.MaxDownloadAttempts)
					return
				}
			}
		})
	}
	p.Lifecycle.Append(fx.Hook{OnStop: func(context.Context) error {
		unsubscribe()
		return t.Close()
	}})
	return t, nil
}

// EventLogger is the event bus as the distribution service uses it.
type EventLogger interface {
	Log(typ events.Type, action events.Action, actor events.Actor)
}

var _ EventLogger = (*eventbus.Bus)(nil)

// Service pulls and pushes images: the registry service for contexts and
// credentials, the transfers for downloads and upload bounds, the image
// service for the store. It is safe for concurrent use.
type Service struct {
	registry  *registry.Service
	images    *storage.Images
	transfers *Transfers
	meta      *Metadata
	events    EventLogger
	policy    *signature.PolicyContext
	log       *zap.Logger
}

// ServiceParams are what the distribution stage needs.
type ServiceParams struct {
	fx.In
	Registry  *registry.Service
	Images    *storage.Images
	Transfers *Transfers
	Metadata  *Metadata
	Log       *zap.Logger
	// Events is the event bus (3.18); no pull or push events without it.
	Events *eventbus.Bus `optional:"true"`
}

// NewService is the distribution stage.
func NewService(p ServiceParams) (*Service, error) {
	var ev EventLogger
	if p.Events != nil {
		ev = p.Events
	}
	return New(p.Registry, p.Images, p.Transfers, p.Metadata, ev, p.Log)
}

// New returns the pull and push service; ev may be nil (no events).
func New(reg *registry.Service, images *storage.Images, t *Transfers, meta *Metadata, ev EventLogger, log *zap.Logger) (*Service, error) {
	// Signatures are not checked, as dockerd does not without content
	// trust.
	policy, err := signature.NewPolicyContext(&signature.Policy{
		Default: []signature.PolicyRequirement{signature.NewPRInsecureAcceptAnything()},
	})
	if err != nil {
		return nil, fmt.Errorf("image policy: %w", err)
	}
	return &Service{registry: reg, images: images, transfers: t, meta: meta, events: ev, policy: policy,
		log: log.With(zap.String("module", "distribution"))}, nil
}

// systemContext is the context of an operation on host's registry.
func (s *Service) systemContext(ctx context.Context, host string, auth *registry.AuthConfig) *types.SystemContext {
	sys := s.registry.SystemContext(ctx, host, auth)
	sys.BigFilesTemporaryDir = s.transfers.Dir()
	sys.BlobInfoCacheDir = s.meta.Dir()
	return sys
}

// event logs an image event as dockerd does for pull and push: the actor
// is the reference, with the image's labels and the reference as "name".
func (s *Service) event(action events.Action, ref string, labels map[string]string) {
	if s.events == nil {
		return
	}
	attrs := make(map[string]string, len(labels)+1)
	for k, v := range labels {
		attrs[k] = v
	}
	attrs["name"] = ref
	s.events.Log(events.ImageEventType, action, events.Actor{ID: ref, Attributes: attrs})
}

// shortDigest is the 12-character ID dockerd shows for a blob.
func shortDigest(d interface{ Encoded() string }) string {
	e := d.Encoded()
	if len(e) > 12 {
		return e[:12]
	}
	return e
}

// sinceMillis is a duration for logs.
func sinceMillis(t time.Time) zap.Field {
	return zap.Duration("took", time.Since(t).Round(time.Millisecond))
}
