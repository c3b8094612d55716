// Package auth is the registry login route of step 5: POST /auth, which
// dockerd serves among its system routes. It checks a client's
// credentials against a registry through modules/registry and answers
// {"Status":"Login Succeeded"}.
package auth
