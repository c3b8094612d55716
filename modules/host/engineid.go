package host

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/uuid"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wharfd/wharfd/modules/config"
)

// engineIDFile is the engine ID's file in the effective data root, as
// dockerd's.
const engineIDFile = "engine-id"

// EngineID is the value of stage 3.16 trust-key: the engine's stable
// identity, reported as ID by GET /info and as the actor of daemon events.
type EngineID struct {
	// ID is a UUID (v4) for a new engine, or the key ID of a migrated
	// legacy trust key (twelve groups of four base32 characters).
	ID string
}

// EngineIDParams are the inputs of stage 3.16 trust-key.
type EngineIDParams struct {
	fx.In

	Config *config.Config
	Root   DataRoot
	Logger *zap.Logger
}

// NewEngineID is stage 3.16 trust-key: LoadEngineID in the effective data
// root, migrating key.json from the configuration file's directory.
func NewEngineID(p EngineIDParams) (EngineID, error) {
	var legacy string
	if p.Config.ConfigFile != "" {
		legacy = filepath.Join(filepath.Dir(p.Config.ConfigFile), "key.json")
	}
	return LoadEngineID(p.Root.Path, legacy, p.Logger.With(zap.String("module", "host")))
}

// LoadEngineID returns the engine ID kept in root/engine-id, creating the
// file (0600, written atomically) the first time: with the key ID of the
// legacy trust key at legacyKey when that file exists (dockerd 23's
// one-time migration, so an upgraded engine keeps its identity), else
// with a new random UUID. An unreadable or malformed legacy key is an
// error; legacyKey "" skips the migration.
func LoadEngineID(root, legacyKey string, log *zap.Logger) (EngineID, error) {
	path := filepath.Join(root, engineIDFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil && strings.TrimSpace(string(b)) != "":
		return EngineID{ID: strings.TrimSpace(string(b))}, nil
	case err == nil:
		log.Warn("engine ID file is empty; creating a new engine ID", zap.String("path", path))
	case !errors.Is(err, fs.ErrNotExist):
		return EngineID{}, fmt.Errorf("read engine ID: %w", err)
	}

	id := uuid.NewString()
	if legacyKey != "" {
		kid, err := legacyKeyID(legacyKey)
		switch {
		case err == nil:
			id = kid
			log.Info("migrated engine ID from legacy trust key", zap.String("key", legacyKey))
		case !errors.Is(err, fs.ErrNotExist):
			return EngineID{}, fmt.Errorf("migrate engine ID from %s: %w", legacyKey, err)
		}
	}
	if err := writeFileAtomic(path, []byte(id), 0o600); err != nil {
		return EngineID{}, fmt.Errorf("save engine ID: %w", err)
	}
	return EngineID{ID: id}, nil
}

// writeFileAtomic writes data to a temporary file beside path and renames
// it over path, so that a crash leaves either the old file or the new.
func writeFileAtomic(path string, data []byte, mode fs.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	err = errors.Join(werr, f.Chmod(mode), f.Sync(), f.Close())
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// jwk is the part of a libtrust key.json (a JSON Web Key) that the key ID
// is computed from.
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	N   string `json:"n"`
	E   string `json:"e"`
	Kid string `json:"kid"`
}

// legacyKeyID returns the libtrust key ID of the key in path: the SHA-256
// of the public key's PKIX DER, truncated to 240 bits, in base32 split
// into twelve groups of four separated by colons. A "kid" that does not
// match the key is an error, as libtrust's.
func legacyKeyID(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var k jwk
	if err := json.Unmarshal(b, &k); err != nil {
		return "", fmt.Errorf("parse key: %w", err)
	}
	pub, err := k.publicKey()
	if err != nil {
		return "", err
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encode public key: %w", err)
	}
	sum := sha256.Sum256(der)
	enc := strings.TrimRight(base32.StdEncoding.EncodeToString(sum[:30]), "=")
	groups := make([]string, 0, len(enc)/4)
	for i := 0; i < len(enc); i += 4 {
		groups = append(groups, enc[i:min(i+4, len(enc))])
	}
	id := strings.Join(groups, ":")
	if k.Kid != "" && k.Kid != id {
		return "", fmt.Errorf("key ID %q does not match the key (%s)", k.Kid, id)
	}
	return id, nil
}

func (k jwk) publicKey() (crypto.PublicKey, error) {
	switch k.Kty {
	case "EC":
		var curve elliptic.Curve
		switch k.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		case "P-521":
			curve = elliptic.P521()
		default:
			return nil, fmt.Errorf("unsupported EC curve %q", k.Crv)
		}
		x, errX := b64url(k.X)
		y, errY := b64url(k.Y)
		if err := errors.Join(errX, errY); err != nil {
			return nil, fmt.Errorf("EC key coordinates: %w", err)
		}
		size := (curve.Params().BitSize + 7) / 8
		if len(x) > size || len(y) > size {
			return nil, fmt.Errorf("EC key coordinates too long for %s", k.Crv)
		}
		pt := make([]byte, 1+2*size)
		pt[0] = 4
		copy(pt[1+size-len(x):1+size], x)
		copy(pt[1+2*size-len(y):], y)
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, pt)
		if err != nil {
			return nil, fmt.Errorf("EC key: %w", err)
		}
		return pub, nil
	case "RSA":
		n, errN := b64url(k.N)
		e, errE := b64url(k.E)
		if err := errors.Join(errN, errE); err != nil {
			return nil, fmt.Errorf("RSA key: %w", err)
		}
		exp := new(big.Int).SetBytes(e)
		if len(n) == 0 || !exp.IsInt64() || exp.Int64() < 2 || exp.Int64() > 1<<31-1 {
			return nil, errors.New("RSA key: invalid modulus or exponent")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exp.Int64())}, nil
	default:
		return nil, fmt.Errorf("unsupported key type %q", k.Kty)
	}
}

// b64url decodes JOSE base64url, with or without padding.
func b64url(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
