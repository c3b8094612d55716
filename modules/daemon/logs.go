package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	units "github.com/docker/go-units"
)

// LogDriverJSONFile is the only log driver: dockerd's default json-file.
const LogDriverJSONFile = "json-file"

// maxLogLine is the longest message the json-file log writes at once;
// longer lines are split, as dockerd's copier (16 KiB).
const maxLogLine = 16 << 10

// LogMessage is one line of a json-file log, in the Engine API's format:
// {"log":"hi\n","stream":"stdout","time":"2024-01-02T03:04:05.123456789Z"}.
type LogMessage struct {
	// Log is the line, its newline included (absent from a partial
	// line).
	Log string `json:"log"`
	// Stream is "stdout" or "stderr".
	Stream string `json:"stream"`
	// Time is when the daemon read the line.
	Time time.Time `json:"time"`
}

// logOptions are a container's json-file options (--log-opt).
type logOptions struct {
	maxSize int64 // bytes; 0 is unlimited
	maxFile int   // files kept, the current one included; at least 1
}

// parseLogConfig checks a LogConfig as dockerd's json-file driver:
// max-size (a size such as 10m, -1 unlimited), max-file (at least 1, only
// with max-size), compress, labels, env, env-regex and tag are known.
func parseLogConfig(typ string, cfg map[string]string) (logOptions, error) {
	o := logOptions{maxFile: 1}
	if typ != "" && typ != LogDriverJSONFile {
		return o, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("logger: no log driver named '%s' is registered", typ))
	}
	for k, v := range cfg {
		switch k {
		case "max-size":
			if v == "-1" {
				continue
			}
			n, err := units.RAMInBytes(v)
			if err != nil {
				return o, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("failed to parse max-size: %v", err))
			}
			o.maxSize = n
		case "max-file":
			n, err := strconv.Atoi(v)
			if err != nil {
				return o, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("failed to parse max-file: %v", err))
			}
			if n < 1 {
				return o, errdefs.ErrInvalidArgument.WithMessage("max-file cannot be less than 1")
			}
			o.maxFile = n
		case "compress", "labels", "labels-regex", "env", "env-regex", "tag", "mode", "max-buffer-size":
		default:
			return o, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("unknown log opt '%s' for json-file log driver", k))
		}
	}
	if o.maxFile > 1 && o.maxSize == 0 {
		return o, errdefs.ErrInvalidArgument.WithMessage("max-file cannot be set when max-size is not set")
	}
	return o, nil
}

// jsonLog is a container's json-file log: written while the container
// runs, read by logs and attach?logs at any time.
type jsonLog struct {
	path string
	opts logOptions

	mu   sync.Mutex
	f    *os.File
	size int64
	subs map[chan LogMessage]struct{}
}

func newJSONLog(path string, opts logOptions) *jsonLog {
	return &jsonLog{path: path, opts: opts, subs: map[chan LogMessage]struct{}{}}
}

// open opens the current file for appending (at start).
func (l *jsonLog) open() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		return nil
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open log: %w", err)
	}
	l.f, l.size = f, st.Size()
	return nil
}

// close closes the file and ends every follower (at exit).
func (l *jsonLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
	for ch := range l.subs {
		close(ch)
	}
	clear(l.subs)
}

// write appends one message, rotating first when it would pass max-size.
func (l *jsonLog) write(m LogMessage) {
	b, err := json.Marshal(m)
	if err != nil {
		return
	}
	b = append(b, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return
	}
	if l.opts.maxSize > 0 && l.size > 0 && l.size+int64(len(b)) > l.opts.maxSize {
		l.rotateLocked()
	}
	if l.f != nil {
		n, _ := l.f.Write(b)
		l.size += int64(n)
	}
	for ch := range l.subs {
		select {
		case ch <- m:
		default: // a follower too slow: dropped, its stream ends
			close(ch)
			delete(l.subs, ch)
		}
	}
}

// rotateLocked shifts <log>.N-1 → <log>.N … <log> → <log>.1 and starts an
// empty file, keeping maxFile files in all.
func (l *jsonLog) rotateLocked() {
	l.f.Close()
	l.f = nil
	if l.opts.maxFile > 1 {
		os.Remove(l.path + "." + strconv.Itoa(l.opts.maxFile-1))
		for i := l.opts.maxFile - 2; i >= 1; i-- {
			os.Rename(l.path+"."+strconv.Itoa(i), l.path+"."+strconv.Itoa(i+1))
		}
		os.Rename(l.path, l.path+".1")
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return
	}
	l.f, l.size = f, 0
}

// streamWriter splits a process's output into log lines for one stream.
type streamWriter struct {
	l      *jsonLog
	stream string
	buf    []byte
}

func (w *streamWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := indexByte(p, '\n')
		if i < 0 {
			w.buf = append(w.buf, p...)
			for len(w.buf) >= maxLogLine {
				w.emit(w.buf[:maxLogLine])
				w.buf = append(w.buf[:0], w.buf[maxLogLine:]...)
			}
			break
		}
		w.buf = append(w.buf, p[:i+1]...)
		p = p[i+1:]
		for len(w.buf) > maxLogLine {
			w.emit(w.buf[:maxLogLine])
			w.buf = append(w.buf[:0], w.buf[maxLogLine:]...)
		}
		w.emit(w.buf)
		w.buf = w.buf[:0]
	}
	return n, nil
}

// flush writes a last partial line.
func (w *streamWriter) flush() {
	if len(w.buf) > 0 {
		w.emit(w.buf)
		w.buf = w.buf[:0]
	}
}

func (w *streamWriter) emit(b []byte) {
	w.l.write(LogMessage{Log: string(b), Stream: w.stream, Time: time.Now().UTC()})
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// LogsOptions select the messages of Logs, as GET /containers/{id}/logs.
type LogsOptions struct {
	// Stdout and Stderr select the streams.
	Stdout, Stderr bool
	// Since and Until bound the messages' times (zero: unbounded).
	Since, Until time.Time
	// Tail is how many of the last messages to send; negative for all.
	Tail int
	// Follow keeps sending new messages until the container stops or
	// ctx ends.
	Follow bool
}

// read sends the log's messages matching o to emit, oldest first.
func (l *jsonLog) read(ctx context.Context, o LogsOptions, emit func(LogMessage) error) error {
	l.mu.Lock()
	var files []*os.File
	for i := l.opts.maxFile - 1; i >= 1; i-- {
		if f, err := os.Open(l.path + "." + strconv.Itoa(i)); err == nil {
			files = append(files, f)
		}
	}
	cur, err := os.Open(l.path)
	var curSize int64
	if err == nil {
		files = append(files, cur)
		if l.f != nil {
			curSize = l.size
		} else if st, err := cur.Stat(); err == nil {
			curSize = st.Size()
		}
	}
	var sub chan LogMessage
	if o.Follow && l.f != nil {
		sub = make(chan LogMessage, 1024)
		l.subs[sub] = struct{}{}
	}
	l.mu.Unlock()
	defer func() {
		for _, f := range files {
			f.Close()
		}
		if sub != nil {
			l.mu.Lock()
			if _, ok := l.subs[sub]; ok {
				delete(l.subs, sub)
				close(sub)
			}
			l.mu.Unlock()
		}
	}()

	match := func(m LogMessage) bool {
		if m.Stream == "stdout" && !o.Stdout || m.Stream == "stderr" && !o.Stderr {
			return false
		}
		if !o.Since.IsZero() && m.Time.Before(o.Since) {
			return false
		}
		return true
	}
	past := func(m LogMessage) bool { return !o.Until.IsZero() && m.Time.After(o.Until) }

	var ring []LogMessage
	if o.Tail != 0 {
	files:
		for _, f := range files {
			var r io.Reader = f
			if f == cur {
				r = io.LimitReader(f, curSize)
			}
			dec := json.NewDecoder(bufio.NewReader(r))
			for {
				var m LogMessage
				if err := dec.Decode(&m); err != nil {
					break
				}
				if past(m) {
					break files
				}
				if !match(m) {
					continue
				}
				if o.Tail < 0 {
					if err := emit(m); err != nil {
						return err
					}
					continue
				}
				ring = append(ring, m)
				if len(ring) > o.Tail {
					ring = ring[1:]
				}
			}
		}
		for _, m := range ring {
			if err := emit(m); err != nil {
				return err
			}
		}
	}
	if sub == nil {
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-sub:
			if !ok {
				return nil
			}
			if past(m) {
				return nil
			}
			if !match(m) {
				continue
			}
			if err := emit(m); err != nil {
				return err
			}
		}
	}
}

// removeFiles deletes the log and its rotated files.
func (l *jsonLog) removeFiles() {
	for i := 1; i < max(l.opts.maxFile, 1); i++ {
		os.Remove(l.path + "." + strconv.Itoa(i))
	}
	if err := os.Remove(l.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return
	}
}
