package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/events"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/copy"
	dref "go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/image"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/types"
	cstorage "go.podman.io/storage"
	"go.podman.io/storage/pkg/archive"
)

// ImportOptions are the parameters of POST /images/create?fromSrc=-.
type ImportOptions struct {
	// Ref is the tag the image gets; nil leaves it untagged.
	Ref reference.Named
	// Message is the history comment, and the config's "comment"; the
	// router defaults it to "Imported from -", as dockerd.
	Message string
	// Changes are Dockerfile instructions applied to the config: CMD,
	// ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR.
	Changes []string
	// Platform is the image's platform; nil is linux on this machine's
	// architecture. Only linux is supported.
	Platform *ocispec.Platform
}

// Import is POST /images/create?fromSrc=-: it makes a one-layer image from
// a root filesystem tar read from r (compressed or not), with a config
// built from opts, and returns its ID ("sha256:…"). The layer goes into
// the store through its own importer (PutLayer), which unpacks it
// chrooted into the layer directory, so no entry reaches outside the
// layer. Bad changes, a bad platform or a malformed tar are
// errdefs.ErrInvalidArgument; a failed import leaves no layer, image or
// temporary file.
func (s *Images) Import(ctx context.Context, r io.Reader, opts ImportOptions) (id string, err error) {
	cfg, err := BuildConfig(opts.Changes)
	if err != nil {
		return "", err
	}
	platform := ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if opts.Platform != nil {
		if opts.Platform.OS != "" && opts.Platform.OS != "linux" {
			return "", invalidf("operating system is not supported: %s", opts.Platform.OS)
		}
		if opts.Platform.Architecture != "" {
			platform.Architecture, platform.Variant = opts.Platform.Architecture, opts.Platform.Variant
		}
	}
	sp, err := s.spoolTar(r, "import-*.tar", true)
	if err != nil {
		return "", err
	}
	defer os.Remove(sp.name)
	if len(sp.names) == 0 && sp.size == 0 {
		return "", invalidf("invalid archive: empty, or not a tar archive")
	}

	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	snap, err := s.snapshot()
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			s.rollback(snap)
		}
	}()

	cs := s.db.store.cs
	layerID := sp.digest.Encoded() // the ID the containers-storage transport gives a base layer
	layer, err := cs.Layer(layerID)
	if err != nil {
		f, err := os.Open(sp.name)
		if err != nil {
			return "", fmt.Errorf("import: %w", err)
		}
		layer, _, err = cs.PutLayer(layerID, "", nil, "", false, nil, f)
		f.Close()
		if err != nil {
			return "", invalidf("import layer: %w", err)
		}
	}
	if layer.UncompressedDigest != sp.digest {
		return "", fmt.Errorf("import: layer %s has digest %s, want %s", layerID, layer.UncompressedDigest, sp.digest)
	}

	created := time.Now().UTC()
	configBlob, err := json.Marshal(importConfig{
		DockerOCIImage: dockerspec.DockerOCIImage{
			Image: ocispec.Image{
				Created:  &created,
				Platform: platform,
				RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{sp.digest}},
				History:  []ocispec.History{{Created: &created, Comment: opts.Message}},
			},
			Config: *cfg,
		},
		Comment: opts.Message,
	})
	if err != nil {
		return "", fmt.Errorf("import config: %w", err)
	}
	configDigest := digest.FromBytes(configBlob)
	man := manifest.Schema2FromComponents(
		manifest.Schema2Descriptor{MediaType: manifest.DockerV2Schema2ConfigMediaType, Size: int64(len(configBlob)), Digest: configDigest},
		[]manifest.Schema2Descriptor{{MediaType: manifest.DockerV2SchemaLayerMediaTypeUncompressed, Size: layer.UncompressedSize, Digest: sp.digest}},
	)
	manBlob, err := man.Serialize()
	if err != nil {
		return "", fmt.Errorf("import manifest: %w", err)
	}
	src := &memRef{store: cs, manifest: manBlob, config: configBlob, configDigest: configDigest, layerDigest: sp.digest, layerID: layerID}
	id = configDigest.Encoded()
	dest, err := s.db.storeRef(id)
	if err != nil {
		return "", err
	}
	if _, err := copy.Image(ctx, s.db.policy, dest, src, &copy.Options{SourceCtx: s.db.sys, DestinationCtx: s.db.sys}); err != nil {
		return "", fmt.Errorf("import: %w", err)
	}
	img, err := s.db.Get(ctx, id)
	if err != nil {
		return "", err
	}
	if opts.Ref != nil {
		if _, err := s.refs.Tag(id, opts.Ref); err != nil {
			return "", err
		}
		s.event(events.ActionTag, img.FullID(), Familiar(reference.TagNameOnly(opts.Ref)), img.Labels())
	}
	s.event(events.ActionImport, img.FullID(), img.FullID(), img.Labels())
	return img.FullID(), nil
}

// importConfig is an imported image's config: the Docker/OCI image config
// plus Docker's "comment".
type importConfig struct {
	dockerspec.DockerOCIImage
	Comment string `json:"comment,omitempty"`
}

// spooled is an archive copied into a temporary file.
type spooled struct {
	name     string
	names    []string      // entry names, cleaned, relative
	manifest []byte        // manifest.json's content, if any
	digest   digest.Digest // of the decompressed stream, when asked for
	size     int64         // bytes of the decompressed stream
}

// spoolTar copies a (possibly compressed) tar from r into a temporary
// file, decompressed, checking on the way that it is a whole tar. A
// malformed archive is ErrInvalidArgument and leaves no file behind.
func (s *Images) spoolTar(r io.Reader, pattern string, withDigest bool) (sp spooled, err error) {
	f, err := os.CreateTemp(s.db.store.tmp, pattern)
	if err != nil {
		return sp, fmt.Errorf("spool archive: %w", err)
	}
	sp.name = f.Name()
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("spool archive: %w", cerr)
		}
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	dec, err := archive.DecompressStream(bufioReader(r))
	if err != nil {
		return sp, invalidf("invalid archive: %w", err)
	}
	defer dec.Close()
	var w io.Writer = f
	var dg digest.Digester
	if withDigest {
		dg = digest.Canonical.Digester()
		w = io.MultiWriter(f, dg.Hash())
	}
	bw := bufioWriter(w)
	counted := &countingReader{r: io.TeeReader(dec, bw)}
	if sp.names, sp.manifest, err = tarNames(counted); err != nil {
		return sp, err
	}
	if _, err := io.Copy(io.Discard, counted); err != nil { // the compressor's trailer, padding
		return sp, invalidf("invalid archive: %w", tarError(err))
	}
	if err := bw.Flush(); err != nil {
		return sp, fmt.Errorf("spool archive: %w", err)
	}
	sp.size = counted.n
	if withDigest {
		sp.digest = dg.Digest()
	}
	return sp, nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// BuildConfig applies Dockerfile instructions to an empty image config,
// as `docker import --change` and `docker commit --change`: CMD and
// ENTRYPOINT (JSON or shell form), ENV and LABEL (key=value pairs, or
// the legacy "key value"), EXPOSE (port[/proto], range a-b), STOPSIGNAL,
// USER, VOLUME (JSON or words) and WORKDIR (relative to the previous one).
// Other instructions are errdefs.ErrInvalidArgument,
// "<instruction> is not a valid change command".
func BuildConfig(changes []string) (*dockerspec.DockerOCIImageConfig, error) {
	cfg := &dockerspec.DockerOCIImageConfig{}
	cmdSet := false
	for _, change := range changes {
		change = strings.TrimSpace(change)
		if change == "" {
			continue
		}
		instr, args, _ := strings.Cut(change, " ")
		args = strings.TrimSpace(args)
		switch strings.ToUpper(instr) {
		case "CMD":
			cmd, err := execForm(instr, args)
			if err != nil {
				return nil, err
			}
			cfg.Cmd, cmdSet = cmd, true
		case "ENTRYPOINT":
			ep, err := execForm(instr, args)
			if err != nil {
				return nil, err
			}
			cfg.Entrypoint = ep
			if !cmdSet {
				cfg.Cmd = nil
			}
		case "ENV":
			kvs, err := keyValues(instr, args)
			if err != nil {
				return nil, err
			}
			for _, kv := range kvs {
				cfg.Env = setEnv(cfg.Env, kv[0], kv[1])
			}
		case "LABEL":
			kvs, err := keyValues(instr, args)
			if err != nil {
				return nil, err
			}
			if cfg.Labels == nil {
				cfg.Labels = map[string]string{}
			}
			for _, kv := range kvs {
				cfg.Labels[kv[0]] = kv[1]
			}
		case "EXPOSE":
			words, err := splitWords(args)
			if err != nil || len(words) == 0 {
				return nil, invalidf("EXPOSE requires at least one argument")
			}
			for _, w := range words {
				ports, err := exposedPorts(w)
				if err != nil {
					return nil, err
				}
				if cfg.ExposedPorts == nil {
					cfg.ExposedPorts = map[string]struct{}{}
				}
				for _, p := range ports {
					cfg.ExposedPorts[p] = struct{}{}
				}
			}
		case "USER":
			if args == "" {
				return nil, invalidf("USER requires exactly one argument")
			}
			cfg.User = args
		case "STOPSIGNAL":
			if args == "" {
				return nil, invalidf("STOPSIGNAL requires exactly one argument")
			}
			cfg.StopSignal = args
		case "VOLUME":
			var vols []string
			if strings.HasPrefix(args, "[") {
				if err := json.Unmarshal([]byte(args), &vols); err != nil {
					return nil, invalidf("VOLUME: %s is not a JSON array of strings", args)
				}
			} else {
				var err error
				if vols, err = splitWords(args); err != nil {
					return nil, err
				}
			}
			if len(vols) == 0 {
				return nil, invalidf("VOLUME requires at least one argument")
			}
			if cfg.Volumes == nil {
				cfg.Volumes = map[string]struct{}{}
			}
			for _, v := range vols {
				if strings.TrimSpace(v) == "" {
					return nil, invalidf("VOLUME specified can not be an empty string")
				}
				cfg.Volumes[v] = struct{}{}
			}
		case "WORKDIR":
			if args == "" {
				return nil, invalidf("WORKDIR requires exactly one argument")
			}
			if !path.IsAbs(args) {
				base := cfg.WorkingDir
				if base == "" {
					base = "/"
				}
				args = path.Join(base, args)
			}
			cfg.WorkingDir = path.Clean(args)
		default:
			return nil, invalidf("%s is not a valid change command", strings.ToLower(instr))
		}
	}
	return cfg, nil
}

// execForm parses CMD/ENTRYPOINT arguments: a JSON array of strings, or a
// shell command run with /bin/sh -c.
func execForm(instr, args string) ([]string, error) {
	if strings.HasPrefix(args, "[") {
		var list []string
		if err := json.Unmarshal([]byte(args), &list); err == nil {
			return list, nil
		}
	}
	if args == "" {
		return nil, invalidf("%s requires at least one argument", strings.ToUpper(instr))
	}
	return []string{"/bin/sh", "-c", args}, nil
}

// keyValues parses ENV/LABEL arguments: key=value pairs with shell
// quoting, or the legacy single "key value".
func keyValues(instr, args string) ([][2]string, error) {
	words, err := splitWords(args)
	if err != nil {
		return nil, err
	}
	if len(words) == 0 {
		return nil, invalidf("%s requires at least one argument", strings.ToUpper(instr))
	}
	if !strings.Contains(words[0], "=") {
		key, value, _ := strings.Cut(args, " ")
		if strings.TrimSpace(value) == "" {
			return nil, invalidf("%s must have two arguments", strings.ToUpper(instr))
		}
		vs, err := splitWords(value)
		if err != nil {
			return nil, err
		}
		return [][2]string{{key, strings.Join(vs, " ")}}, nil
	}
	var out [][2]string
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, invalidf("%s names can not be blank", strings.ToUpper(instr))
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// setEnv sets key=value in env, replacing an earlier value.
func setEnv(env []string, key, value string) []string {
	for i, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			env[i] = key + "=" + value
			return env
		}
	}
	return append(env, key+"="+value)
}

// exposedPorts expands "80", "53/udp" or "8000-8002/tcp" into config keys.
func exposedPorts(w string) ([]string, error) {
	port, proto, ok := strings.Cut(w, "/")
	if !ok {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return nil, invalidf("invalid proto: %s", proto)
	}
	lo, hi, isRange := strings.Cut(port, "-")
	start, err := strconv.ParseUint(lo, 10, 16)
	if err != nil {
		return nil, invalidf("invalid containerPort: %s", port)
	}
	end := start
	if isRange {
		if end, err = strconv.ParseUint(hi, 10, 16); err != nil || end < start {
			return nil, invalidf("invalid containerPort: %s", port)
		}
	}
	var out []string
	for p := start; p <= end; p++ {
		out = append(out, fmt.Sprintf("%d/%s", p, proto))
	}
	return out, nil
}

// splitWords splits s into words as a shell would, honouring '…', "…"
// and backslash escapes.
func splitWords(s string) ([]string, error) {
	var (
		words []string
		cur   strings.Builder
		in    bool // inside a word
		quote rune
	)
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else if c == '\\' && quote == '"' && i+1 < len(rs) {
				i++
				cur.WriteRune(rs[i])
			} else {
				cur.WriteRune(c)
			}
		case c == '\'' || c == '"':
			quote, in = c, true
		case c == '\\' && i+1 < len(rs):
			i++
			cur.WriteRune(rs[i])
			in = true
		case c == ' ' || c == '\t' || c == '\n':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(c)
			in = true
		}
	}
	if quote != 0 {
		return nil, invalidf("unterminated quote in %q", s)
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}

// memTransport is the transport of memRef; it parses nothing.
type memTransport struct{}

func (memTransport) Name() string { return "wharfd-import" }
func (memTransport) ParseReference(string) (types.ImageReference, error) {
	return nil, fmt.Errorf("wharfd-import references cannot be parsed")
}
func (memTransport) ValidatePolicyConfigurationScope(string) error { return nil }

// memRef is an image source held in memory: a manifest and config made by
// Import for a layer already in the store, so that the containers-storage
// transport records the image exactly as for any other copy, reusing the
// layer instead of reading it again.
type memRef struct {
	store        cstorage.Store
	manifest     []byte
	config       []byte
	configDigest digest.Digest
	layerDigest  digest.Digest
	layerID      string
}

var (
	_ types.ImageReference = (*memRef)(nil)
	_ types.ImageSource    = (*memSource)(nil)
)

func (r *memRef) Transport() types.ImageTransport         { return memTransport{} }
func (r *memRef) StringWithinTransport() string           { return r.configDigest.String() }
func (r *memRef) DockerReference() dref.Named             { return nil }
func (r *memRef) PolicyConfigurationIdentity() string     { return "" }
func (r *memRef) PolicyConfigurationNamespaces() []string { return nil }
func (r *memRef) NewImage(ctx context.Context, sys *types.SystemContext) (types.ImageCloser, error) {
	return image.FromSource(ctx, sys, &memSource{ref: r})
}
func (r *memRef) NewImageSource(context.Context, *types.SystemContext) (types.ImageSource, error) {
	return &memSource{ref: r}, nil
}
func (r *memRef) NewImageDestination(context.Context, *types.SystemContext) (types.ImageDestination, error) {
	return nil, fmt.Errorf("wharfd-import references are read-only")
}
func (r *memRef) DeleteImage(context.Context, *types.SystemContext) error {
	return fmt.Errorf("wharfd-import references are read-only")
}

// memSource serves a memRef.
type memSource struct{ ref *memRef }

func (s *memSource) Reference() types.ImageReference { return s.ref }
func (s *memSource) Close() error                    { return nil }
func (s *memSource) GetManifest(_ context.Context, instance *digest.Digest) ([]byte, string, error) {
	if instance != nil {
		return nil, "", fmt.Errorf("no manifest instance %s", instance)
	}
	return s.ref.manifest, manifest.DockerV2Schema2MediaType, nil
}
func (s *memSource) HasThreadSafeGetBlob() bool { return true }
func (s *memSource) GetBlob(_ context.Context, info types.BlobInfo, _ types.BlobInfoCache) (io.ReadCloser, int64, error) {
	switch info.Digest {
	case s.ref.configDigest:
		return io.NopCloser(bytes.NewReader(s.ref.config)), int64(len(s.ref.config)), nil
	case s.ref.layerDigest:
		rc, err := s.ref.store.Diff("", s.ref.layerID, &cstorage.DiffOptions{Compression: new(archive.Uncompressed)})
		return rc, -1, err
	}
	return nil, 0, fmt.Errorf("no blob %s", info.Digest)
}
func (s *memSource) GetSignatures(context.Context, *digest.Digest) ([][]byte, error) {
	return nil, nil
}
func (s *memSource) LayerInfosForCopy(context.Context, *digest.Digest) ([]types.BlobInfo, error) {
	return nil, nil
}
