package config

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"go.uber.org/zap/zapcore"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name      string
		giveArgs  []string
		wantErr   string
		wantCheck func(t *testing.T, f *Flags)
	}{
		{
			name: "defaults",
			wantCheck: func(t *testing.T, f *Flags) {
				o := f.Options
				if o.ConfigFile != DefaultConfigFile || o.DataRoot != DefaultDataRoot || o.ExecRoot != DefaultExecRoot || o.Pidfile != DefaultPidfile {
					t.Errorf("paths = %q %q %q %q", o.ConfigFile, o.DataRoot, o.ExecRoot, o.Pidfile)
				}
				if o.Group != "docker" || o.LogDriver != "json-file" || o.DefaultRuntime != "runc" || o.LogLevel != "info" {
					t.Errorf("defaults = %+v", o)
				}
				if !o.ICC || !o.IPTables || !o.IPForward || !o.IPMasq || o.TLS || o.Debug {
					t.Errorf("bool defaults = %+v", o)
				}
				if o.MaxConcurrentDownloads != 3 || o.MaxConcurrentUploads != 5 || o.MaxDownloadAttempts != 5 || o.ShutdownTimeout != 15*time.Second {
					t.Errorf("numeric defaults = %+v", o)
				}
				if f.DumpGraph != "" || f.Help || f.Version || f.Validate || f.Changed("tls") {
					t.Errorf("flags = %+v", f)
				}
			},
		},
		{
			name:     "repeatable and short flags",
			giveArgs: []string{"-H", "fd://", "--host=tcp://127.0.0.1:2376", "-D", "--label", "a=b,c", "--label", "x=y", "--log-opt", "max-size=10m", "--add-runtime", "crun=/usr/bin/crun", "--default-ulimit", "nofile=1024:2048", "--default-address-pool", "base=10.10.0.0/16,size=24", "--shutdown-timeout", "30", "-p", "/run/w.pid"},
			wantCheck: func(t *testing.T, f *Flags) {
				o := f.Options
				if strings.Join(o.Hosts, " ") != "fd:// tcp://127.0.0.1:2376" {
					t.Errorf("Hosts = %q", o.Hosts)
				}
				if strings.Join(o.Labels, " ") != "a=b,c x=y" {
					t.Errorf("Labels = %q (a comma must not split)", o.Labels)
				}
				if !o.Debug || o.LogOpts["max-size"] != "10m" || o.Runtimes["crun"].Path != "/usr/bin/crun" || o.Pidfile != "/run/w.pid" {
					t.Errorf("Options = %+v", o)
				}
				if u := o.DefaultUlimits["nofile"]; u.Soft != 1024 || u.Hard != 2048 {
					t.Errorf("DefaultUlimits = %+v", o.DefaultUlimits)
				}
				if len(o.DefaultAddressPools) != 1 || o.DefaultAddressPools[0].Base.String() != "10.10.0.0/16" || o.DefaultAddressPools[0].Size != 24 {
					t.Errorf("DefaultAddressPools = %+v", o.DefaultAddressPools)
				}
				if o.ShutdownTimeout != 30*time.Second {
					t.Errorf("ShutdownTimeout = %v", o.ShutdownTimeout)
				}
				if !f.Changed("host") || !f.Changed("debug") || f.Changed("tls") {
					t.Errorf("changed = %v", f.changed)
				}
			},
		},
		{
			name:     "init-path",
			giveArgs: []string{"--init-path", "/usr/bin/tini-static"},
			wantCheck: func(t *testing.T, f *Flags) {
				if f.Options.InitPath != "/usr/bin/tini-static" || !f.Changed("init-path") {
					t.Errorf("InitPath = %q, changed = %v", f.Options.InitPath, f.changed)
				}
			},
		},
		{
			name:     "tls false given explicitly",
			giveArgs: []string{"--tls=false"},
			wantCheck: func(t *testing.T, f *Flags) {
				if f.Options.TLS || !f.Changed("tls") {
					t.Errorf("TLS = %v, changed = %v", f.Options.TLS, f.Changed("tls"))
				}
			},
		},
		{
			name:     "dump-graph bare is dot",
			giveArgs: []string{"--dump-graph"},
			wantCheck: func(t *testing.T, f *Flags) {
				if f.DumpGraph != "dot" {
					t.Errorf("DumpGraph = %q", f.DumpGraph)
				}
			},
		},
		{
			name:     "dump-graph json",
			giveArgs: []string{"--dump-graph=json", "--validate", "-h", "-v"},
			wantCheck: func(t *testing.T, f *Flags) {
				if f.DumpGraph != "json" || !f.Validate || !f.Help || !f.Version {
					t.Errorf("flags = %+v", f)
				}
			},
		},
		{name: "dump-graph bad format", giveArgs: []string{"--dump-graph=svg"}, wantErr: `invalid argument "svg" for "--dump-graph" flag: want "dot" or "json"`},
		{name: "unknown flag", giveArgs: []string{"--no-such-flag"}, wantErr: "unknown flag: --no-such-flag"},
		{name: "unknown shorthand", giveArgs: []string{"-Z"}, wantErr: "unknown shorthand flag: 'Z' in -Z"},
		{name: "positional argument", giveArgs: []string{"-D", "extra"}, wantErr: `"wharfd" accepts no arguments (got "extra")`},
		{name: "dump-graph format after a space", giveArgs: []string{"--dump-graph", "json"}, wantErr: `"wharfd" accepts no arguments (got "json"); use --dump-graph=json`},
		{name: "bad int", giveArgs: []string{"--mtu", "big"}, wantErr: `invalid argument "big" for "--mtu" flag`},
		{name: "bad runtime", giveArgs: []string{"--add-runtime", "crun"}, wantErr: `"crun" is not name=path`},
		{name: "bad ulimit", giveArgs: []string{"--default-ulimit", "nofile"}, wantErr: `invalid argument "nofile" for "--default-ulimit" flag`},
		{name: "bad pool", giveArgs: []string{"--default-address-pool", "base=10.0.0.0/8"}, wantErr: "want base=CIDR,size=N"},
		{name: "missing value", giveArgs: []string{"--data-root"}, wantErr: "flag needs an argument: --data-root"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ParseFlags(tt.giveArgs)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseFlags(%q) error = %v, want %q", tt.giveArgs, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseFlags(%q): %v", tt.giveArgs, err)
			}
			tt.wantCheck(t, f)
		})
	}
}

func TestUsage(t *testing.T) {
	var b bytes.Buffer
	Usage(&b)
	out := b.String()
	if !strings.HasPrefix(out, "Usage:\twharfd [OPTIONS]\n\nA container engine that speaks the Docker Engine API") {
		t.Errorf("usage does not start with dockerd's shape:\n%s", out)
	}
	for _, want := range []string{"\n\nOptions:\n", "--config-file string", "-H, --host list", "--dump-graph format[=dot]", "-h, --help", "-v, --version", `(default "/var/lib/wharfd")`, "  -D, --debug  "} {
		if !strings.Contains(out, want) {
			t.Errorf("usage lacks %q:\n%s", want, out)
		}
	}
}

func TestFlagsLogLevel(t *testing.T) {
	tests := []struct {
		name      string
		giveArgs  []string
		wantLevel zapcore.Level
		wantErr   string
	}{
		{name: "default", wantLevel: zapcore.InfoLevel},
		{name: "debug flag", giveArgs: []string{"-D", "-l", "error"}, wantLevel: zapcore.DebugLevel},
		{name: "log level", giveArgs: []string{"-l", "warn"}, wantLevel: zapcore.WarnLevel},
		{name: "trace is debug", giveArgs: []string{"--log-level=trace"}, wantLevel: zapcore.DebugLevel},
		{name: "unknown", giveArgs: []string{"-l", "loud"}, wantErr: "invalid logging level: loud"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ParseFlags(tt.giveArgs)
			if err != nil {
				t.Fatal(err)
			}
			got, err := FlagsLogLevel(f)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.wantLevel {
				t.Errorf("FlagsLogLevel = %v, %v; want %v", got, err, tt.wantLevel)
			}
		})
	}
}

// Every daemon.json key with a flag names a real flag, and every option
// flag has its key, so the conflict check cannot miss one.
func TestDirectivesMatchFlags(t *testing.T) {
	fs := newFlagSet(&Flags{})
	notOptions := map[string]bool{"config-file": true, "validate": true, "dump-graph": true, "help": true, "version": true}
	keyed := map[string]bool{}
	for k, d := range directives {
		if d.flag == "" {
			continue
		}
		if fs.Lookup(d.flag) == nil {
			t.Errorf("directive %q names flag --%s, which does not exist", k, d.flag)
		}
		keyed[d.flag] = true
	}
	fs.VisitAll(func(fl *pflag.Flag) {
		if !notOptions[fl.Name] && !keyed[fl.Name] {
			t.Errorf("flag --%s has no daemon.json key", fl.Name)
		}
	})
}
