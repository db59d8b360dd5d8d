package pkcs11key

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/miekg/pkcs11"
)

// cryptoki is the part of the Cryptoki API (*pkcs11.Ctx) that a Token
// calls once its module is loaded: slots, sessions, login, objects and
// signing (Logout and CloseAllSessions only in tests, which break sessions
// with them). It exists so that tests can put a fault-injecting wrapper
// around the real module; Open always uses the real one.
type cryptoki interface {
	GetSlotList(tokenPresent bool) ([]uint, error)
	GetTokenInfo(slotID uint) (pkcs11.TokenInfo, error)
	OpenSession(slotID uint, flags uint) (pkcs11.SessionHandle, error)
	CloseSession(sh pkcs11.SessionHandle) error
	CloseAllSessions(slotID uint) error
	GetSessionInfo(sh pkcs11.SessionHandle) (pkcs11.SessionInfo, error)
	Login(sh pkcs11.SessionHandle, userType uint, pin string) error
	Logout(sh pkcs11.SessionHandle) error
	GetAttributeValue(sh pkcs11.SessionHandle, o pkcs11.ObjectHandle, a []*pkcs11.Attribute) ([]*pkcs11.Attribute, error)
	SetAttributeValue(sh pkcs11.SessionHandle, o pkcs11.ObjectHandle, a []*pkcs11.Attribute) error
	FindObjectsInit(sh pkcs11.SessionHandle, temp []*pkcs11.Attribute) error
	FindObjects(sh pkcs11.SessionHandle, max int) ([]pkcs11.ObjectHandle, bool, error)
	FindObjectsFinal(sh pkcs11.SessionHandle) error
	GenerateRandom(sh pkcs11.SessionHandle, length int) ([]byte, error)
	GenerateKeyPair(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, public, private []*pkcs11.Attribute) (pkcs11.ObjectHandle, pkcs11.ObjectHandle, error)
	SignInit(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, o pkcs11.ObjectHandle) error
	Sign(sh pkcs11.SessionHandle, message []byte) ([]byte, error)
}

var _ cryptoki = (*pkcs11.Ctx)(nil)

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
