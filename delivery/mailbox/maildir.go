package mailbox

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Maildir layout (https://cr.yp.to/proto/maildir.html).
const (
	dirTmp = "tmp"
	dirNew = "new"
	dirCur = "cur"

	// infoSep starts the "info" part of a file name in cur/ (":2,<flags>").
	infoSep = ":"
	// infoNew is the info Dovecot gives a message it moves from new/ to cur/
	// without flags (experimental semantics "2", no flags set).
	infoNew = ":2,"

	// maxUIDLen: RFC 1939 §7, a unique-id is 1 to 70 characters in 0x21..0x7E.
	maxUIDLen = 70
	// maxNameLen: a user's directory is one path element (NAME_MAX on Linux).
	maxNameLen = 255
	// staleTmp: the Maildir spec lets a reader remove tmp/ files not accessed
	// for 36 hours (left by a delivery that crashed before its rename).
	staleTmp = 36 * time.Hour
)

// validUser reports why name (already lower-cased) cannot be a mailbox
// directory: it must be exactly one safe path element.
func validUser(name string) error {
	switch {
	case name == "":
		return errors.New("empty user name")
	case len(name) > maxNameLen:
		return fmt.Errorf("user name longer than %d bytes", maxNameLen)
	case !utf8.ValidString(name):
		return errors.New("user name is not valid UTF-8")
	case strings.HasPrefix(name, "."):
		// also rules out "." and ".."
		return errors.New("user name starts with '.'")
	}
	for _, r := range name {
		if r < 0x21 || r == 0x7f || r == '/' || r == '\\' {
			return fmt.Errorf("user name contains %q", r)
		}
	}
	if !filepath.IsLocal(name) || filepath.Base(name) != name {
		return errors.New("user name is not a single path element")
	}
	return nil
}

// escapeHost makes the host part of a unique name safe, as the spec asks
// ("/" → \057, ":" → \072), and also "," (→ \054), which starts the
// Dovecot-style ",S=" fields.
func escapeHost(h string) string {
	if h == "" {
		return "localhost"
	}
	r := strings.NewReplacer("/", `\057`, ":", `\072`, ",", `\054`)
	return r.Replace(h)
}

// uniqueName builds a Maildir unique name for one delivery of message
// msgID:
//
//	<sec>.M<usec>P<pid>Q<counter>R<msg_id>.<host>,S=<size>
//
// M, P, Q and R are the modern spec's fields; R (random) keeps two Stores of
// one process, or two processes reusing a pid, apart. The queue's msg_id
// holds 32 random bits, so it serves as R and names the message for POP3's
// logs (msgIDOf); an msgID not of the queue's shape gets 32 random bits in
// hex instead. ",S=" is the size extension Dovecot and others read to list
// without a stat.
func uniqueName(now time.Time, pid int, counter uint64, msgID, host string, size int64) string {
	r := msgID
	if !isMsgID(r) {
		var rnd [4]byte
		_, _ = rand.Read(rnd[:]) // crypto/rand.Read never fails (Go 1.24+)
		r = hex.EncodeToString(rnd[:])
	}
	return fmt.Sprintf("%d.M%06dP%dQ%dR%s.%s,S=%d",
		now.Unix(), now.Nanosecond()/1000, pid, counter, r, host, size)
}

// msgIDLen is the length of the queue's ids: 20 characters of lower-case
// base32hex. The random R of other names (8 hex digits here, other lengths
// elsewhere) is never taken for one.
const msgIDLen = 20

// isMsgID reports whether s has the shape of a queue msg_id.
func isMsgID(s string) bool {
	if len(s) != msgIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'v') {
			return false
		}
	}
	return true
}

// msgIDOf is the msg_id a unique name carries in its R field ("" when it
// carries none: a name of an older version or of another tool).
func msgIDOf(base string) string {
	_, rest, _ := strings.Cut(base, ".")
	mid, _, _ := strings.Cut(rest, ".")
	i := strings.LastIndexByte(mid, 'R')
	if i < 0 || !isMsgID(mid[i+1:]) {
		return ""
	}
	return mid[i+1:]
}

// baseName is the unique name: the file name without the ":2,..." info.
func baseName(file string) string {
	base, _, _ := strings.Cut(file, infoSep)
	return base
}

// sizeField returns the ",S=<n>" value of a unique name, if present.
func sizeField(base string) (int64, bool) {
	_, fields, ok := strings.Cut(base, ",")
	if !ok {
		return 0, false
	}
	for f := range strings.SplitSeq(fields, ",") {
		if v, ok := strings.CutPrefix(f, "S="); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			return n, err == nil && n >= 0
		}
	}
	return 0, false
}

// orderKey is the delivery time and counter recorded in a unique name; names
// written by other tools that lack M or Q simply sort by seconds and name.
type orderKey struct {
	sec, usec, q uint64
}

func parseOrder(base string) orderKey {
	var k orderKey
	secStr, rest, _ := strings.Cut(base, ".")
	k.sec, _ = strconv.ParseUint(secStr, 10, 64)
	mid, _, _ := strings.Cut(rest, ".")
	for i := 0; i < len(mid); i++ {
		c := mid[i]
		if c != 'M' && c != 'Q' {
			continue
		}
		j := i + 1
		for j < len(mid) && mid[j] >= '0' && mid[j] <= '9' {
			j++
		}
		n, _ := strconv.ParseUint(mid[i+1:j], 10, 64)
		if c == 'M' {
			k.usec = n
		} else {
			k.q = n
		}
		i = j - 1
	}
	return k
}

// popUID turns a unique name into a POP3 unique-id: the name itself when it
// is within RFC 1939 §7's limits, otherwise a stable digest of it.
func popUID(base string) string {
	ok := len(base) >= 1 && len(base) <= maxUIDLen
	for i := 0; ok && i < len(base); i++ {
		ok = base[i] >= 0x21 && base[i] <= 0x7e
	}
	if ok {
		return base
	}
	sum := sha256.Sum256([]byte(base))
	return "H" + hex.EncodeToString(sum[:20])
}

// entry is one message in a session's snapshot.
type entry struct {
	dir  string // absolute path of the cur/ (or new/) directory
	file string // file name in dir, with info
	base string // unique name
	key  orderKey
	info Info
}

// stage writes the message file — prefix, then the committed spool file
// src of bodySize octets (< 0: unknown, found by fstat) from octet skip on
// (past trace fields written for another account) — into dir/tmp under a
// fresh unique name and fsyncs it. It returns the name and the file's
// size, which the name records.
func (s *Store) stage(dir string, prefix []byte, src string, bodySize, skip int64, msgID string) (name string, size int64, err error) {
	body, err := openBody(src, bodySize)
	if err != nil {
		return "", 0, fmt.Errorf("mailbox: open %s: %w", src, err)
	}
	defer body.close()
	if skip < 0 || skip > body.size {
		return "", 0, fmt.Errorf("mailbox: stage %s: %d octets of trace fields in a body of %d", src, skip, body.size)
	}
	body.off = skip
	size = int64(len(prefix)) + body.size - skip
	// A name collision is practically impossible (counter + random), but a
	// retry is cheap and bounded.
	for range 3 {
		name = s.newName(msgID, size)
		if err = writeMessage(filepath.Join(dir, dirTmp, name), prefix, body, true); !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if err != nil {
		return "", 0, fmt.Errorf("mailbox: stage %s: %w", src, err)
	}
	return name, size, nil
}

// newName is a fresh unique name for message msgID of size octets.
func (s *Store) newName(msgID string, size int64) string {
	return uniqueName(time.Now(), s.pid, s.counter.Add(1), msgID, s.host, size)
}

// snapshot moves every message of new/ into cur/ with info ":2," (as Dovecot
// does when a POP3 or IMAP client first sees it) and lists cur/, oldest
// delivery first. moved reports whether any rename happened.
func snapshot(dir string) (list []entry, moved bool, err error) {
	newDir, curDir := filepath.Join(dir, dirNew), filepath.Join(dir, dirCur)
	news, err := os.ReadDir(newDir)
	if err != nil {
		return nil, false, fmt.Errorf("mailbox: read %s: %w", newDir, err)
	}
	for _, de := range news {
		n := de.Name()
		if strings.HasPrefix(n, ".") || !de.Type().IsRegular() {
			continue
		}
		err := os.Rename(filepath.Join(newDir, n), filepath.Join(curDir, baseName(n)+infoNew))
		if err == nil {
			moved = true
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, moved, fmt.Errorf("mailbox: move %s to cur: %w", n, err)
		}
	}
	curs, err := os.ReadDir(curDir)
	if err != nil {
		return nil, moved, fmt.Errorf("mailbox: read %s: %w", curDir, err)
	}
	list = make([]entry, 0, len(curs))
	for _, de := range curs {
		n := de.Name()
		if strings.HasPrefix(n, ".") || !de.Type().IsRegular() {
			continue
		}
		base := baseName(n)
		size, ok := sizeField(base)
		if !ok {
			fi, err := de.Info()
			if err != nil {
				continue // removed meanwhile by another Maildir tool
			}
			size = fi.Size()
		}
		list = append(list, entry{
			dir: curDir, file: n, base: base, key: parseOrder(base),
			info: Info{Size: size, UID: popUID(base), MsgID: msgIDOf(base)},
		})
	}
	sort.Slice(list, func(i, j int) bool {
		a, b := list[i].key, list[j].key
		if a != b {
			if a.sec != b.sec {
				return a.sec < b.sec
			}
			if a.usec != b.usec {
				return a.usec < b.usec
			}
			return a.q < b.q
		}
		return list[i].base < list[j].base
	})
	return list, moved, nil
}

// find locates a message whose flags another Maildir tool changed (renamed
// cur/<base>:2,<flags>) since the snapshot.
func (e *entry) find() (string, bool) {
	des, err := os.ReadDir(e.dir)
	if err != nil {
		return "", false
	}
	for _, de := range des {
		if baseName(de.Name()) == e.base {
			return filepath.Join(e.dir, de.Name()), true
		}
	}
	return "", false
}

// cleanTmp removes tmp/ files older than staleTmp. Errors are ignored: a
// leftover costs disk space, not correctness.
func cleanTmp(dir string, now time.Time) {
	tmp := filepath.Join(dir, dirTmp)
	des, err := os.ReadDir(tmp)
	if err != nil {
		return
	}
	for _, de := range des {
		fi, err := de.Info()
		if err == nil && fi.Mode().IsRegular() && now.Sub(fi.ModTime()) > staleTmp {
			os.Remove(filepath.Join(tmp, de.Name()))
		}
	}
}
