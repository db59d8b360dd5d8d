package pkcs11key

import (
	"sync"

	"github.com/miekg/pkcs11"
)

// faultyModule is the real module (SoftHSM2) with faults injected on
// demand: a call can fail with a given CKR, the token can be "removed", and
// a call can hang inside the module until released. It counts every call
// that reaches it, failed or not, so that tests can tell an operation that
// went to the token from one that failed fast. With no fault set it passes
// everything through.
type faultyModule struct {
	real cryptoki

	mu      sync.Mutex
	calls   map[string]int
	faults  map[string]fault
	removed bool
	hung    map[string]chan struct{}
	entered chan struct{}
}

// fault makes calls to one function fail with rv: the next times calls, or
// every call while times is negative.
type fault struct {
	rv    uint
	times int
}

func newFaultyModule(real cryptoki) *faultyModule {
	return &faultyModule{
		real:    real,
		calls:   map[string]int{},
		faults:  map[string]fault{},
		hung:    map[string]chan struct{}{},
		entered: make(chan struct{}, 16),
	}
}

// fail makes the next times calls to fn (every call if times < 0) fail with
// rv.
func (f *faultyModule) fail(fn string, rv uint, times int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults[fn] = fault{rv, times}
}

// remove behaves like a token pulled out of its slot: C_OpenSession says
// CKR_TOKEN_NOT_PRESENT and every other call CKR_DEVICE_REMOVED, until
// restore.
func (f *faultyModule) remove() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removed = true
}

// restore clears every fault and lets hung calls go.
func (f *faultyModule) restore() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removed = false
	clear(f.faults)
	for fn, ch := range f.hung {
		close(ch)
		delete(f.hung, fn)
	}
}

// hang makes calls to fn block inside the module, each signalling entered
// once it is there, until release (or restore) is called.
func (f *faultyModule) hang(fn string) (entered <-chan struct{}, release func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan struct{})
	f.hung[fn] = ch
	return f.entered, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.hung[fn] == ch {
			close(ch)
			delete(f.hung, fn)
		}
	}
}

// count returns how many calls to fn reached the module.
func (f *faultyModule) count(fn string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[fn]
}

// total returns how many calls reached the module.
func (f *faultyModule) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		n += c
	}
	return n
}

// enter counts a call to fn and returns the error to answer it with, or
// nil to pass it on to the real module, after waiting while fn hangs.
func (f *faultyModule) enter(fn string) error {
	f.mu.Lock()
	f.calls[fn]++
	if err := f.injected(fn); err != nil {
		f.mu.Unlock()
		return err
	}
	hung := f.hung[fn]
	f.mu.Unlock()
	if hung != nil {
		f.entered <- struct{}{}
		<-hung
	}
	return nil
}

// injected returns the fault for a call to fn, consuming one of its times.
// f.mu is held.
func (f *faultyModule) injected(fn string) error {
	if f.removed {
		if fn == "OpenSession" || fn == "GetTokenInfo" {
			return pkcs11.Error(pkcs11.CKR_TOKEN_NOT_PRESENT)
		}
		return pkcs11.Error(pkcs11.CKR_DEVICE_REMOVED)
	}
	flt, ok := f.faults[fn]
	if !ok || flt.times == 0 {
		return nil
	}
	if flt.times > 0 {
		flt.times--
		f.faults[fn] = flt
	}
	return pkcs11.Error(flt.rv)
}

// The cryptoki methods: count, inject, pass on.

func (f *faultyModule) GetSlotList(tokenPresent bool) ([]uint, error) {
	if err := f.enter("GetSlotList"); err != nil {
		return nil, err
	}
	return f.real.GetSlotList(tokenPresent)
}

func (f *faultyModule) GetTokenInfo(slotID uint) (pkcs11.TokenInfo, error) {
	if err := f.enter("GetTokenInfo"); err != nil {
		return pkcs11.TokenInfo{}, err
	}
	return f.real.GetTokenInfo(slotID)
}

func (f *faultyModule) OpenSession(slotID uint, flags uint) (pkcs11.SessionHandle, error) {
	if err := f.enter("OpenSession"); err != nil {
		return 0, err
	}
	return f.real.OpenSession(slotID, flags)
}

func (f *faultyModule) CloseSession(sh pkcs11.SessionHandle) error {
	if err := f.enter("CloseSession"); err != nil {
		return err
	}
	return f.real.CloseSession(sh)
}

func (f *faultyModule) CloseAllSessions(slotID uint) error {
	if err := f.enter("CloseAllSessions"); err != nil {
		return err
	}
	return f.real.CloseAllSessions(slotID)
}

func (f *faultyModule) GetSessionInfo(sh pkcs11.SessionHandle) (pkcs11.SessionInfo, error) {
	if err := f.enter("GetSessionInfo"); err != nil {
		return pkcs11.SessionInfo{}, err
	}
	return f.real.GetSessionInfo(sh)
}

func (f *faultyModule) Login(sh pkcs11.SessionHandle, userType uint, pin string) error {
	if err := f.enter("Login"); err != nil {
		return err
	}
	return f.real.Login(sh, userType, pin)
}

func (f *faultyModule) Logout(sh pkcs11.SessionHandle) error {
	if err := f.enter("Logout"); err != nil {
		return err
	}
	return f.real.Logout(sh)
}

func (f *faultyModule) GetAttributeValue(sh pkcs11.SessionHandle, o pkcs11.ObjectHandle, a []*pkcs11.Attribute) ([]*pkcs11.Attribute, error) {
	if err := f.enter("GetAttributeValue"); err != nil {
		return nil, err
	}
	return f.real.GetAttributeValue(sh, o, a)
}

func (f *faultyModule) SetAttributeValue(sh pkcs11.SessionHandle, o pkcs11.ObjectHandle, a []*pkcs11.Attribute) error {
	if err := f.enter("SetAttributeValue"); err != nil {
		return err
	}
	return f.real.SetAttributeValue(sh, o, a)
}

func (f *faultyModule) FindObjectsInit(sh pkcs11.SessionHandle, temp []*pkcs11.Attribute) error {
	if err := f.enter("FindObjectsInit"); err != nil {
		return err
	}
	return f.real.FindObjectsInit(sh, temp)
}

func (f *faultyModule) FindObjects(sh pkcs11.SessionHandle, max int) ([]pkcs11.ObjectHandle, bool, error) {
	if err := f.enter("FindObjects"); err != nil {
		return nil, false, err
	}
	return f.real.FindObjects(sh, max)
}

func (f *faultyModule) FindObjectsFinal(sh pkcs11.SessionHandle) error {
	if err := f.enter("FindObjectsFinal"); err != nil {
		return err
	}
	return f.real.FindObjectsFinal(sh)
}

func (f *faultyModule) GenerateRandom(sh pkcs11.SessionHandle, length int) ([]byte, error) {
	if err := f.enter("GenerateRandom"); err != nil {
		return nil, err
	}
	return f.real.GenerateRandom(sh, length)
}

func (f *faultyModule) GenerateKeyPair(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, public, private []*pkcs11.Attribute) (pkcs11.ObjectHandle, pkcs11.ObjectHandle, error) {
	if err := f.enter("GenerateKeyPair"); err != nil {
		return 0, 0, err
	}
	return f.real.GenerateKeyPair(sh, m, public, private)
}

func (f *faultyModule) SignInit(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, o pkcs11.ObjectHandle) error {
	if err := f.enter("SignInit"); err != nil {
		return err
	}
	return f.real.SignInit(sh, m, o)
}

func (f *faultyModule) Sign(sh pkcs11.SessionHandle, message []byte) ([]byte, error) {
	err := f.enter("Sign")
	// A C_Sign that fails ends the signing operation (PKCS#11 v2.40, C_Sign),
	// so a failure injected here must end the real one too.
	sig, rerr := f.real.Sign(sh, message)
	if err != nil {
		return nil, err
	}
	return sig, rerr
}

var _ cryptoki = (*faultyModule)(nil)
