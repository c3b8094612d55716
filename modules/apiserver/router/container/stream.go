package container

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"

	"github.com/wharfd/wharfd/modules/apiserver"
	"github.com/wharfd/wharfd/modules/daemon"
)

// Stream media types of hijacked connections (API 1.42+).
const (
	rawStream         = "application/vnd.docker.raw-stream"
	multiplexedStream = "application/vnd.docker.multiplexed-stream"
)

// hijack takes the connection over and answers as dockerd: 101 UPGRADED
// with Upgrade: tcp when the client asked to upgrade, else 200 OK; the
// stream follows.
func hijack(w http.ResponseWriter, req *http.Request, contentType string) (net.Conn, *bufio.Reader, error) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, nil, fmt.Errorf("hijack connection: %w", err)
	}
	_ = conn.SetDeadline(time.Time{})
	if strings.Contains(strings.ToLower(req.Header.Get("Connection")), "upgrade") {
		fmt.Fprintf(conn, "HTTP/1.1 101 UPGRADED\r\nContent-Type: %s\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n", contentType)
	} else {
		fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n\r\n", contentType)
	}
	return conn, brw.Reader, nil
}

// lockedWriter serialises writes of the stdout and stderr copiers.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// outputs returns the writers of the streams asked for: raw with a TTY,
// stdcopy frames without.
func outputs(conn io.Writer, tty, stdout, stderr bool) (io.Writer, io.Writer) {
	lw := &lockedWriter{w: conn}
	var o, e io.Writer
	switch {
	case tty:
		if stdout {
			o = lw
		}
		if stderr {
			e = lw
		}
	default:
		if stdout {
			o = newStdWriter(lw, stdcopy.Stdout)
		}
		if stderr {
			e = newStdWriter(lw, stdcopy.Stderr)
		}
	}
	return o, e
}

// attach is POST /containers/{name}/attach?stream=&logs=&stdin=&stdout=&stderr=&detachKeys=.
func (r *router) attach(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := apiserver.ParseForm(req); err != nil {
		return err
	}
	ref := vars["name"]
	c, err := r.b.Inspect(ctx, ref, false)
	if err != nil {
		return err
	}
	keys := req.Form.Get("detachKeys")
	if _, err := daemon.ParseDetachKeys(keys); err != nil {
		return err
	}
	tty := c.Config.Tty
	ct := multiplexedStream
	if tty {
		ct = rawStream
	}
	conn, in, err := hijack(w, req, ct)
	if err != nil {
		return err
	}
	defer conn.Close()
	o := daemon.AttachOptions{
		DetachKeys: keys,
		Logs:       apiserver.BoolValue(req, "logs"),
		Stream:     apiserver.BoolValue(req, "stream"),
	}
	o.Stdout, o.Stderr = outputs(conn, tty, apiserver.BoolValue(req, "stdout"), apiserver.BoolValue(req, "stderr"))
	if apiserver.BoolValue(req, "stdin") {
		o.Stdin = in
	}
	if err := r.b.Attach(context.WithoutCancel(ctx), c.ID, o); err != nil && !errors.Is(err, daemon.ErrDetached) {
		writeStreamError(conn, tty, err)
	}
	return nil
}

// writeStreamError reports an error inside a hijacked stream, as
// dockerd: on stderr without a TTY, raw with one.
func writeStreamError(conn io.Writer, tty bool, err error) {
	msg := err.Error() + "\r\n"
	if tty {
		_, _ = io.WriteString(conn, msg)
		return
	}
	_, _ = newStdWriter(conn, stdcopy.Stderr).Write([]byte(msg))
}

// execCreate is POST /containers/{name}/exec.
func (r *router) execCreate(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	var body container.ExecCreateRequest
	if err := apiserver.ReadJSON(req, &body); err != nil {
		return err
	}
	id, err := r.b.ExecCreate(ctx, vars["name"], body)
	if err != nil {
		return err
	}
	return apiserver.WriteJSON(w, http.StatusCreated, container.ExecCreateResponse{ID: id})
}

// execStart is POST /exec/{id}/start: detached it answers 200 at once;
// otherwise the connection is hijacked and carries the streams until the
// process exits.
func (r *router) execStart(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	var body container.ExecStartRequest
	if err := apiserver.ReadJSON(req, &body); err != nil {
		return err
	}
	id := vars["id"]
	tty, err := r.b.ExecTTY(id)
	if err != nil {
		return err
	}
	inspect, err := r.b.ExecInspect(id)
	if err != nil {
		return err
	}
	if inspect.Running || inspect.ExitCode != nil {
		// Let the backend refuse with dockerd's text before hijacking.
		return r.b.ExecStart(ctx, id, daemon.ExecStartOptions{Detach: true})
	}
	if body.Detach {
		if err := r.b.ExecStart(ctx, id, daemon.ExecStartOptions{Detach: true}); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}
	ct := multiplexedStream
	if tty {
		ct = rawStream
	}
	conn, in, err := hijack(w, req, ct)
	if err != nil {
		return err
	}
	defer conn.Close()
	o := daemon.ExecStartOptions{ConsoleSize: body.ConsoleSize}
	o.Stdout, o.Stderr = outputs(conn, tty, inspect.OpenStdout, inspect.OpenStderr)
	if inspect.OpenStdin {
		o.Stdin = in
	}
	if err := r.b.ExecStart(ctx, id, o); err != nil && !errors.Is(err, daemon.ErrDetached) {
		writeStreamError(conn, tty, err)
	}
	return nil
}

func (r *router) execInspect(ctx context.Context, w http.ResponseWriter, _ *http.Request, vars map[string]string) error {
	resp, err := r.b.ExecInspect(vars["id"])
	if err != nil {
		return err
	}
	return apiserver.WriteJSON(w, http.StatusOK, resp)
}

func (r *router) execResize(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	h, wd, err := size(req)
	if err != nil {
		return err
	}
	return r.b.ExecResize(vars["id"], h, wd)
}

// stdWriter frames each write as one stdcopy frame: the stream type, three
// zero bytes and the payload's length (big endian uint32), then the
// payload, in one write (the format stdcopy.StdCopy reads).
type stdWriter struct {
	w   io.Writer
	typ stdcopy.StdType
}

func newStdWriter(w io.Writer, typ stdcopy.StdType) io.Writer { return &stdWriter{w: w, typ: typ} }

func (s *stdWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	buf := make([]byte, 8+len(p))
	buf[0] = byte(s.typ)
	binary.BigEndian.PutUint32(buf[4:8], uint32(len(p)))
	copy(buf[8:], p)
	if _, err := s.w.Write(buf); err != nil {
		return 0, err
	}
	return len(p), nil
}
