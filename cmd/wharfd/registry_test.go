package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker"
	dockerarchive "go.podman.io/image/v5/docker/archive"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"
	"golang.org/x/crypto/bcrypt"

	"github.com/wharfd/wharfd/internal/testimage"
)

// registryBin is Debian's docker-registry (the CNCF distribution
// registry, 2.8).
const registryBin = "docker-registry"

// testRegistry is a registry the test started on 127.0.0.1.
type testRegistry struct {
	t       testing.TB
	dir     string // storage and config
	addr    string // 127.0.0.1:port
	cfg     string
	cmd     *exec.Cmd
	stopped chan struct{}
}

// registryOptions configure a test registry.
type registryOptions struct {
	// user and password turn on htpasswd basic auth.
	user, password string
	// proxy makes it a pull-through cache of this registry URL.
	proxy string
}

// startRegistry starts a registry on a free loopback port with storage
// in a temporary directory, skipping the test when the package is not
// installed.
func startRegistry(t testing.TB, o registryOptions) *testRegistry {
	t.Helper()
	if _, err := exec.LookPath(registryBin); err != nil {
		t.Skip("docker-registry not installed: apt-get install -y docker-registry")
	}
	dir := t.TempDir()
	r := &testRegistry{t: t, dir: dir, addr: freeAddr(t), cfg: filepath.Join(dir, "config.yml")}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n",
		filepath.Join(dir, "data"), r.addr)
	if o.user != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(o.password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		htpasswd := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(o.user+":"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&cfg, "auth:\n  htpasswd:\n    realm: wharfd-test\n    path: %s\n", htpasswd)
	}
	if o.proxy != "" {
		fmt.Fprintf(&cfg, "proxy:\n  remoteurl: %s\n", o.proxy)
	}
	if err := os.WriteFile(r.cfg, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	r.start()
	t.Cleanup(r.stop)
	return r
}

// start runs the registry and waits until it listens.
func (r *testRegistry) start() {
	r.t.Helper()
	cmd := exec.Command(registryBin, "serve", r.cfg)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.cmd, r.stopped = cmd, make(chan struct{})
	sc := bufio.NewScanner(stderr)
	var seen []string
	listening := false
	for !listening && sc.Scan() {
		listening = strings.Contains(sc.Text(), "listening on")
		seen = append(seen, sc.Text())
	}
	if !listening {
		cmd.Wait() //nolint:errcheck // it has exited; its log says why
		r.t.Fatalf("registry did not start:\n%s", strings.Join(seen, "\n"))
	}
	go func() {
		for sc.Scan() {
		}
		cmd.Wait() //nolint:errcheck // stopped by the test
		close(r.stopped)
	}()
}

// stop ends the registry (by the pid the test started) and waits for it.
func (r *testRegistry) stop() {
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // it may have exited
	select {
	case <-r.stopped:
	case <-time.After(10 * time.Second):
		r.cmd.Process.Kill() //nolint:errcheck // as above
		<-r.stopped
	}
	r.cmd = nil
}

// freeAddr returns a loopback address with a port free at the time.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// registryDaemon is a daemon for registry tests: in the host's network
// namespace (the registries listen on its loopback) with the default
// bridge, packet filter and IP forwarding off, so it changes nothing of
// the host's network.
type registryDaemon struct {
	t   testing.TB
	dir string
	cmd *exec.Cmd
	log *lineLog
}

// lineLog keeps a daemon's log lines and lets a test wait for one.
type lineLog struct {
	mu    sync.Mutex
	lines []string
	cond  *sync.Cond
	done  bool
}

func (l *lineLog) waitFor(t testing.TB, from int, want string) int {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := from; ; i++ {
		for i >= len(l.lines) && !l.done {
			l.cond.Wait()
		}
		if i >= len(l.lines) {
			t.Fatalf("daemon log ended without %q", want)
		}
		if strings.Contains(l.lines[i], want) {
			return i + 1
		}
	}
}

func (l *lineLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.lines)
}

func startRegistryDaemon(t testing.TB, configJSON string) *registryDaemon {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the daemon refuses to start otherwise")
	}
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("docker CLI not installed")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "daemon.json"), []byte(configJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	// The host's network namespace (the registries listen on its
	// loopback) with nothing that would change the host's network, as
	// main_test.go's startDaemonHostNet, which takes a *testing.T only.
	cmd := exec.Command(wharfdBin, daemonArgs(dir, "--bridge=none", "--iptables=false", "--ip-forward=false")...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // Wait reports
			cmd.Wait()                          //nolint:errcheck // exit status irrelevant at cleanup
		}
	})
	l := &lineLog{}
	l.cond = sync.NewCond(&l.mu)
	go func() {
		for sc.Scan() {
			l.mu.Lock()
			l.lines = append(l.lines, sc.Text())
			l.cond.Broadcast()
			l.mu.Unlock()
		}
		l.mu.Lock()
		l.done = true
		l.cond.Broadcast()
		l.mu.Unlock()
	}()
	d := &registryDaemon{t: t, dir: dir, cmd: cmd, log: l}
	l.waitFor(t, 0, "api serving")
	return d
}

// docker runs the CLI against the daemon with its own DOCKER_CONFIG.
func (d *registryDaemon) docker(stdin []byte, args ...string) (string, string, int) {
	d.t.Helper()
	return runDocker(d.t, d.dir, stdin, args...)
}

func (d *registryDaemon) ok(args ...string) string {
	d.t.Helper()
	out, errOut, code := d.docker(nil, args...)
	if code != 0 {
		d.t.Fatalf("docker %v: exit %d\n%s%s", args, code, out, errOut)
	}
	return strings.TrimSpace(out)
}

func (d *registryDaemon) fails(args ...string) string {
	d.t.Helper()
	out, errOut, code := d.docker(nil, args...)
	if code == 0 {
		d.t.Fatalf("docker %v succeeded:\n%s", args, out)
	}
	return errOut
}

// load loads img into the daemon.
func (d *registryDaemon) load(img testimage.Image) {
	d.t.Helper()
	out, errOut, code := d.docker(testimage.DockerArchive(d.t, img), "load")
	if code != 0 {
		d.t.Fatalf("docker load: exit %d\n%s%s", code, out, errOut)
	}
}

// reload rewrites daemon.json, sends SIGHUP and waits for the reload.
func (d *registryDaemon) reload(configJSON string) {
	d.t.Helper()
	from := d.log.len()
	if err := os.WriteFile(filepath.Join(d.dir, "daemon.json"), []byte(configJSON), 0o644); err != nil {
		d.t.Fatal(err)
	}
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		d.t.Fatal(err)
	}
	d.log.waitFor(d.t, from, "reloaded configuration")
}

// stagingLeft lists what the pull staging directory holds.
func (d *registryDaemon) stagingLeft() []string {
	d.t.Helper()
	entries, err := os.ReadDir(filepath.Join(d.dir, "root", "tmp", "distribution"))
	if err != nil {
		d.t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// layerCount is the number of layers in the daemon's store.
func (d *registryDaemon) layerCount() int {
	d.t.Helper()
	var n int
	for _, driver := range []string{"overlay", "vfs"} {
		b, err := os.ReadFile(filepath.Join(d.dir, "root", "storage", driver+"-layers", "layers.json"))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			d.t.Fatal(err)
		}
		var layers []json.RawMessage
		if err := json.Unmarshal(b, &layers); err != nil {
			d.t.Fatal(err)
		}
		n += len(layers)
	}
	return n
}

// multiLayerImage is a three-layer image: busybox plus two layers of
// random data of the given sizes.
func multiLayerImage(t testing.TB, arch string, seed uint64, sizes ...int64) testimage.Image {
	t.Helper()
	layers := [][]byte{testimage.RootFS(t)}
	for i, s := range sizes {
		layers = append(layers, testimage.RandomLayer(t, s, seed+uint64(i)))
	}
	return testimage.NewImage(t, testimage.Config{Cmd: []string{"sh"}, Arch: arch, Labels: map[string]string{"seed": fmt.Sprint(seed)}}, nil, layers...)
}

var digestRe = regexp.MustCompile(`digest: (sha256:[0-9a-f]{64}) size: [0-9]+`)

func TestRegistryPushPull(t *testing.T) {
	reg := startRegistry(t, registryOptions{})
	d := startRegistryDaemon(t, `{}`)
	repo := reg.addr + "/team/app"

	img := multiLayerImage(t, "", 1, 1<<20, 3<<20)
	img.Tags = []string{repo + ":1"}
	d.load(img)

	// docker push: every layer pushed, then the manifest digest.
	out := d.ok("push", repo+":1")
	m := digestRe.FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "The push refers to repository ["+repo+"]") || !strings.Contains(out, "Pushed") {
		t.Fatalf("docker push output:\n%s", out)
	}
	pushed := m[1]
	// A second push finds every layer in the registry.
	if out := d.ok("push", repo+":1"); !strings.Contains(out, "Layer already exists") || strings.Contains(out, ": Pushed") || !strings.Contains(out, pushed) {
		t.Errorf("second push:\n%s", out)
	}
	if got := d.ok("images", "--digests", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}"); got != repo+" 1 "+pushed {
		t.Errorf("images --digests after push: %q, want the pushed digest %s", got, pushed)
	}

	// rmi then pull: same ID, the repository digest recorded.
	d.ok("rmi", repo+":1")
	if got := d.layerCount(); got != 0 {
		t.Fatalf("%d layers left after rmi", got)
	}
	out = d.ok("pull", repo+":1")
	for _, want := range []string{"1: Pulling from team/app", "Pull complete", "Digest: " + pushed, "Status: Downloaded newer image for " + repo + ":1", repo + ":1"} {
		if !strings.Contains(out, want) {
			t.Errorf("docker pull output lacks %q:\n%s", want, out)
		}
	}
	if got := d.ok("image", "inspect", "--format", "{{.Id}} {{json .RepoDigests}} {{json .RepoTags}}", repo+":1"); got != fmt.Sprintf(`%s ["%s@%s"] ["%s:1"]`, img.ID(), repo, pushed, repo) {
		t.Errorf("inspect after pull: %s", got)
	}
	if out := d.ok("pull", repo+":1"); !strings.Contains(out, "Status: Image is up to date for "+repo+":1") {
		t.Errorf("second pull:\n%s", out)
	}
	if left := d.stagingLeft(); len(left) != 0 {
		t.Errorf("staging directory not empty after pulls: %v", left)
	}

	// Pull by digest: the digest reference, no tag.
	d.ok("rmi", repo+":1")
	out = d.ok("pull", repo+"@"+pushed)
	if !strings.Contains(out, "Status: Downloaded newer image for "+repo+"@"+pushed) {
		t.Errorf("pull by digest:\n%s", out)
	}
	if got := d.ok("images", "--digests", "--format", "{{.Repository}} {{.Tag}} {{.Digest}} {{.ID}}"); got != repo+" <none> "+pushed+" "+img.ID()[7:19] {
		t.Errorf("images after pull by digest: %q", got)
	}
	d.ok("rmi", repo+"@"+pushed)

	// dockerd's errors.
	tests := []struct {
		name     string
		giveRef  string
		wantErrs []string
	}{
		// The distribution registry answers MANIFEST_UNKNOWN for an unknown
		// repository too (Docker Hub and auth registries answer 401: see
		// TestRegistryLogin), and dockerd words it so.
		{name: "missing repository", giveRef: reg.addr + "/nosuch:1", wantErrs: []string{"manifest for " + reg.addr + "/nosuch:1 not found: manifest unknown"}},
		{name: "missing tag", giveRef: repo + ":nosuch", wantErrs: []string{"manifest for " + repo + ":nosuch not found: manifest unknown"}},
		{name: "unreachable registry", giveRef: freeAddr(t) + "/app:1", wantErrs: []string{"connection refused"}},
		{name: "bad reference", giveRef: "UPPER/case", wantErrs: []string{"invalid reference format"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errOut := d.fails("pull", tt.giveRef)
			for _, want := range tt.wantErrs {
				if !strings.Contains(errOut, want) {
					t.Errorf("stderr lacks %q:\n%s", want, errOut)
				}
			}
			if strings.HasPrefix(tt.giveRef, "127.") && !strings.Contains(errOut, strings.Split(tt.giveRef, "/")[0]) {
				t.Errorf("error does not name the registry:\n%s", errOut)
			}
		})
	}
	if got := d.ok("images", "-aq"); got != "" {
		t.Errorf("images after failed pulls: %q", got)
	}
	if got := d.layerCount(); got != 0 {
		t.Errorf("%d layers after failed pulls", got)
	}

	// Image events pull and push.
	since := time.Now().Add(-time.Hour).Unix()
	ev := d.ok("events", "--since", fmt.Sprint(since), "--until", fmt.Sprint(time.Now().Unix()+1), "--filter", "type=image", "--format", "{{.Action}} {{.Actor.ID}}")
	for _, want := range []string{"push " + repo + ":1", "pull " + repo + ":1", "pull " + repo + "@" + pushed} {
		if !strings.Contains(ev, want) {
			t.Errorf("events lack %q:\n%s", want, ev)
		}
	}
}

func TestRegistryLogin(t *testing.T) {
	reg := startRegistry(t, registryOptions{user: "alice", password: "s3cret"})
	d := startRegistryDaemon(t, `{}`)

	errOut := d.fails("login", "-u", "alice", "-p", "wrong", reg.addr)
	if !strings.Contains(errOut, "unauthorized") || !strings.Contains(errOut, reg.addr) {
		t.Errorf("login with a bad password:\n%s", errOut)
	}
	img := multiLayerImage(t, "", 7, 1<<20)
	img.Tags = []string{reg.addr + "/private/app:1"}
	d.load(img)
	if errOut := d.fails("push", reg.addr+"/private/app:1"); !strings.Contains(errOut, "unauthorized") && !strings.Contains(errOut, "authentication required") {
		t.Errorf("anonymous push to an auth registry:\n%s", errOut)
	}

	if out := d.ok("login", "-u", "alice", "-p", "s3cret", reg.addr); !strings.Contains(out, "Login Succeeded") {
		t.Errorf("login: %s", out)
	}
	out := d.ok("push", reg.addr+"/private/app:1")
	pushed := digestRe.FindStringSubmatch(out)
	if pushed == nil {
		t.Fatalf("push after login:\n%s", out)
	}
	d.ok("rmi", reg.addr+"/private/app:1")
	if out := d.ok("pull", reg.addr+"/private/app:1"); !strings.Contains(out, "Digest: "+pushed[1]) {
		t.Errorf("pull with credentials:\n%s", out)
	}
	d.ok("rmi", reg.addr+"/private/app:1")

	d.ok("logout", reg.addr)
	errOut = d.fails("pull", reg.addr+"/private/app:1")
	if !strings.Contains(errOut, "pull access denied for "+reg.addr+"/private/app, repository does not exist or may require 'docker login'") {
		t.Errorf("anonymous pull from an auth registry:\n%s", errOut)
	}
}

func TestRegistryMirror(t *testing.T) {
	upstream := startRegistry(t, registryOptions{})
	mirror := startRegistry(t, registryOptions{proxy: "http://" + upstream.addr})
	d := startRegistryDaemon(t, `{}`)

	// Docker Hub's library/mirrored exists only behind the mirror
	// (nothing outside this machine is reachable).
	img := multiLayerImage(t, "", 11, 1<<20)
	img.Tags = []string{upstream.addr + "/library/mirrored:1"}
	d.load(img)
	d.ok("push", upstream.addr+"/library/mirrored:1")
	d.ok("rmi", upstream.addr+"/library/mirrored:1")

	// Without the mirror Docker Hub is asked, and is out of reach.
	if out, _, code := d.docker(nil, "pull", "mirrored:1"); code == 0 {
		t.Fatalf("pull without a mirror succeeded:\n%s", out)
	}
	// The mirror, added by a reload.
	d.reload(fmt.Sprintf(`{"registry-mirrors": ["http://%s"]}`, mirror.addr))
	out := d.ok("pull", "mirrored:1")
	if !strings.Contains(out, "1: Pulling from library/mirrored") || !strings.Contains(out, "Status: Downloaded newer image for mirrored:1") {
		t.Errorf("pull through the mirror:\n%s", out)
	}
	if got := d.ok("image", "inspect", "--format", "{{.Id}} {{json .RepoTags}}", "mirrored:1"); got != img.ID()+` ["mirrored:1"]` {
		t.Errorf("mirrored image: %s", got)
	}
}

func TestRegistryMultiPlatform(t *testing.T) {
	reg := startRegistry(t, registryOptions{})
	d := startRegistryDaemon(t, `{}`)

	// Two single-platform images pushed by go.podman.io/image, then an
	// OCI index of them.
	host := multiLayerImage(t, testimage.HostArch(), 21, 1<<20)
	other := "arm64"
	if testimage.HostArch() == "arm64" {
		other = "amd64"
	}
	foreign := multiLayerImage(t, other, 31, 1<<20)
	repo := reg.addr + "/multi/app"
	confDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(confDir, "registries.conf"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	sys := &types.SystemContext{DockerInsecureSkipTLSVerify: types.OptionalBoolTrue, DockerAuthConfig: &types.DockerAuthConfig{},
		SystemRegistriesConfPath: filepath.Join(confDir, "registries.conf"), SystemRegistriesConfDirPath: filepath.Join(confDir, "none.d"),
		RegistriesDirPath: filepath.Join(confDir, "none.d")}
	var descs []map[string]any
	for _, p := range []struct {
		img  testimage.Image
		arch string
	}{{host, testimage.HostArch()}, {foreign, other}} {
		man := pushArchive(t, sys, p.img, repo+":"+p.arch)
		descs = append(descs, map[string]any{"mediaType": manifest.DockerV2Schema2MediaType, "digest": digest.FromBytes(man), "size": len(man),
			"platform": map[string]string{"os": "linux", "architecture": p.arch}})
	}
	index, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": descs})
	if err != nil {
		t.Fatal(err)
	}
	putManifest(t, sys, repo+":multi", index)
	indexDigest := digest.FromBytes(index)

	out := d.ok("pull", repo+":multi")
	if !strings.Contains(out, "Digest: "+indexDigest.String()) {
		t.Errorf("pull of the index:\n%s", out)
	}
	if got := d.ok("image", "inspect", "--format", "{{.Id}} {{.Architecture}} {{json .RepoDigests}}", repo+":multi"); got != fmt.Sprintf(`%s %s ["%s@%s"]`, host.ID(), testimage.HostArch(), repo, indexDigest) {
		t.Errorf("pulled instance: %s", got)
	}
	d.ok("pull", "--platform", "linux/"+other, repo+":multi")
	if got := d.ok("image", "inspect", "--format", "{{.Id}} {{.Architecture}}", repo+":multi"); got != foreign.ID()+" "+other {
		t.Errorf("pulled --platform linux/%s: %s", other, got)
	}
	errOut := d.fails("pull", "--platform", "linux/s390x", repo+":multi")
	if !strings.Contains(errOut, "no matching manifest for linux/s390x in the manifest list entries") {
		t.Errorf("pull for a platform the index lacks:\n%s", errOut)
	}
}

// pushArchive pushes img (as a docker-archive) to ref with
// go.podman.io/image and returns the manifest pushed.
func pushArchive(t testing.TB, sys *types.SystemContext, img testimage.Image, ref string) []byte {
	t.Helper()
	file := filepath.Join(t.TempDir(), "img.tar")
	if err := os.WriteFile(file, testimage.DockerArchive(t, img), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := dockerarchive.ParseReference(file)
	if err != nil {
		t.Fatal(err)
	}
	dest, err := docker.ParseReference("//" + ref)
	if err != nil {
		t.Fatal(err)
	}
	policy, err := signature.NewPolicyContext(&signature.Policy{Default: []signature.PolicyRequirement{signature.NewPRInsecureAcceptAnything()}})
	if err != nil {
		t.Fatal(err)
	}
	defer policy.Destroy() //nolint:errcheck // test
	man, err := copy.Image(context.Background(), policy, dest, src, &copy.Options{DestinationCtx: sys, SourceCtx: sys, ForceManifestMIMEType: manifest.DockerV2Schema2MediaType})
	if err != nil {
		t.Fatal(err)
	}
	return man
}

// putManifest stores a manifest (list) under ref with go.podman.io/image.
func putManifest(t testing.TB, sys *types.SystemContext, ref string, man []byte) {
	t.Helper()
	r, err := docker.ParseReference("//" + ref)
	if err != nil {
		t.Fatal(err)
	}
	dest, err := r.NewImageDestination(context.Background(), sys)
	if err != nil {
		t.Fatal(err)
	}
	defer dest.Close()
	if err := dest.PutManifest(context.Background(), man, nil); err != nil {
		t.Fatal(err)
	}
}

// throttledProxy forwards TCP connections to a registry at about rate
// bytes per second downstream, so that a pull lasts long enough to be
// interrupted; close cuts every connection.
type throttledProxy struct {
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func startProxy(t testing.TB, addr, upstream string, rate int) *throttledProxy {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	p := &throttledProxy{l: l}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); io.Copy(up, c); up.Close() }() //nolint:errcheck // ends with the connection
			go func() {
				defer p.wg.Done()
				defer c.Close()
				buf := make([]byte, rate/20)
				for {
					n, err := up.Read(buf)
					if n > 0 {
						if _, werr := c.Write(buf[:n]); werr != nil {
							return
						}
						time.Sleep(50 * time.Millisecond) // the throttle, not synchronisation
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(p.close)
	return p
}

func (p *throttledProxy) close() {
	p.l.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

func TestRegistryStoppedMidPull(t *testing.T) {
	reg := startRegistry(t, registryOptions{})
	// One attempt, so that the failure is reported at once.
	d := startRegistryDaemon(t, `{"max-download-attempts": 1}`)
	img := multiLayerImage(t, "", 41, 8<<20, 8<<20)
	img.Tags = []string{reg.addr + "/big/app:1"}
	d.load(img)
	d.ok("push", reg.addr+"/big/app:1")
	d.ok("rmi", reg.addr+"/big/app:1")
	layersBefore := d.layerCount()

	proxyAddr := freeAddr(t)
	proxy := startProxy(t, proxyAddr, reg.addr, 4<<20)
	ref := proxyAddr + "/big/app:1"

	// Pull through the API, and stop the registry once bytes flow.
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", filepath.Join(d.dir, "wharfd.sock"))
	}}}
	resp, err := client.Post("http://wharfd/images/create?fromImage="+ref, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("pull: %s %s", resp.Status, b)
	}
	dec := json.NewDecoder(resp.Body)
	var final string
	stopped := false
	for {
		var msg struct {
			Status         string
			ProgressDetail struct{ Current int64 }
			ErrorDetail    *struct{ Message string }
		}
		if err := dec.Decode(&msg); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatal(err)
		}
		if msg.ErrorDetail != nil {
			final = msg.ErrorDetail.Message
		}
		if !stopped && msg.Status == "Downloading" && msg.ProgressDetail.Current > 0 {
			reg.stop()
			proxy.close()
			stopped = true
		}
	}
	if !stopped {
		t.Fatal("the pull finished before any download progress")
	}
	if final == "" || !strings.Contains(final, proxyAddr) {
		t.Errorf("error after the registry stopped: %q, want one naming %s", final, proxyAddr)
	}
	if got := d.ok("images", "-aq"); got != "" {
		t.Errorf("images after the failed pull: %q", got)
	}
	if got := d.layerCount(); got != layersBefore {
		t.Errorf("%d layers after the failed pull, %d before", got, layersBefore)
	}
	if left := d.stagingLeft(); len(left) != 0 {
		t.Errorf("staging directory after the failed pull: %v", left)
	}

	// The registry back: the retry succeeds.
	reg.start()
	startProxy(t, proxyAddr, reg.addr, 1<<30)
	out := d.ok("pull", ref)
	if !strings.Contains(out, "Status: Downloaded newer image for "+ref) {
		t.Errorf("retry:\n%s", out)
	}
	if got := d.ok("image", "inspect", "--format", "{{.Id}}", ref); got != img.ID() {
		t.Errorf("retried pull: ID %s, want %s", got, img.ID())
	}
}
