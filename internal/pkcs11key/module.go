package pkcs11key

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/miekg/pkcs11"
)

// modules is this package's one piece of package-level mutable state, and
// it mirrors state that already exists per process: a PKCS#11 library is
// initialised once per process (PKCS#11 v2.40 §5.4, C_Initialize) and
// C_Finalize ends every session of every user of it. Tokens opened on the
// same module must therefore share one initialisation, and only the last
// one to close may finalise it.
var modules = struct {
	sync.Mutex
	byPath map[string]*module
}{byPath: map[string]*module{}}

// module is a loaded, initialised PKCS#11 library shared by Tokens.
type module struct {
	key  string
	ctx  *pkcs11.Ctx
	refs int // guarded by modules
	// owned is false when someone else in the process (another library
	// linked in, say) initialised the module first: then it is not ours to
	// finalise.
	owned bool
}

// loadModule returns the shared module for path, loading and initialising
// it on first use.
func loadModule(path string) (*module, error) {
	// dlopen shares one copy of a library between its names, so key the
	// registry by the resolved file.
	key, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, fmt.Errorf("pkcs11key: loading module %s: %w", path, err)
	}
	modules.Lock()
	defer modules.Unlock()
	if m := modules.byPath[key]; m != nil {
		m.refs++
		return m, nil
	}
	ctx := pkcs11.New(key)
	if ctx == nil {
		return nil, fmt.Errorf("pkcs11key: loading module %s: dlopen failed or the library exports no C_GetFunctionList", path)
	}
	owned := true
	if err := ctx.Initialize(); err != nil {
		if !errors.Is(err, pkcs11.Error(pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
			ctx.Destroy()
			return nil, fmt.Errorf("pkcs11key: initialising module %s: %w", path, err)
		}
		owned = false
	}
	m := &module{key: key, ctx: ctx, refs: 1, owned: owned}
	modules.byPath[key] = m
	return m, nil
}

// release drops one reference, finalising and unloading the module with the
// last one.
func (m *module) release() error {
	modules.Lock()
	defer modules.Unlock()
	m.refs--
	if m.refs > 0 {
		return nil
	}
	delete(modules.byPath, m.key)
	var err error
	if m.owned {
		if ferr := m.ctx.Finalize(); ferr != nil {
			err = fmt.Errorf("pkcs11key: finalising module %s: %w", m.key, ferr)
		}
	}
	m.ctx.Destroy()
	return err
}
