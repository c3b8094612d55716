package events

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/wharfd/wharfd/modules/config"
)

// ReloadAttributes returns the attributes of a daemon reload event for the
// configuration now in force, named and formatted as dockerd's: debug,
// live-restore (true/false), labels, insecure-registries and
// registry-mirrors (JSON lists), max-concurrent-downloads,
// max-concurrent-uploads, max-download-attempts, shutdown-timeout (whole
// seconds), default-runtime, runtimes ("name:path" separated by spaces,
// sorted; the built-in runc is "runc:runc"), and name, the host's name,
// when known.
func ReloadAttributes(cfg *config.Config, hostname string) map[string]string {
	runtimes := []string{config.DefaultRuntime + ":" + config.DefaultRuntime}
	for _, name := range slices.Sorted(maps.Keys(cfg.Runtimes)) {
		if name != config.DefaultRuntime {
			runtimes = append(runtimes, name+":"+cfg.Runtimes[name].Path)
		}
	}
	attrs := map[string]string{
		"debug":                    strconv.FormatBool(cfg.Debug),
		"live-restore":             strconv.FormatBool(cfg.LiveRestore),
		"labels":                   jsonList(cfg.Labels),
		"insecure-registries":      jsonList(cfg.InsecureRegistries),
		"registry-mirrors":         jsonList(cfg.RegistryMirrors),
		"max-concurrent-downloads": strconv.Itoa(cfg.MaxConcurrentDownloads),
		"max-concurrent-uploads":   strconv.Itoa(cfg.MaxConcurrentUploads),
		"max-download-attempts":    strconv.Itoa(cfg.MaxDownloadAttempts),
		"shutdown-timeout":         strconv.Itoa(int(cfg.ShutdownTimeout.Seconds())),
		"default-runtime":          cfg.DefaultRuntime,
		"runtimes":                 strings.Join(runtimes, " "),
	}
	if hostname != "" {
		attrs["name"] = hostname
	}
	return attrs
}

// jsonList renders a list as dockerd's reload attributes do: "[]" when
// empty, else a JSON array.
func jsonList(v []string) string {
	if len(v) == 0 {
		return "[]"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "[]" // []string always marshals
	}
	return string(b)
}
