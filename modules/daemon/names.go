package daemon

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
)

// validName is dockerd's container name pattern (restrictedNamePattern),
// with the optional leading slash of the API.
var validName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// checkName validates a name given by the user and returns it with its
// leading slash. Errors are dockerd's 400.
func checkName(name string) (string, error) {
	if !validName.MatchString(name) {
		return "", errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name))
	}
	if !strings.HasPrefix(name, "/") {
		name = "/" + name
	}
	return name, nil
}

// newID returns a random 64 hex digit ID whose 12-digit short form is not
// all digits (dockerd's stringid rule: a short ID must not parse as a
// number).
func newID() string {
	b := make([]byte, 32)
	for {
		_, _ = rand.Read(b)
		id := hex.EncodeToString(b)
		if _, err := strconv.ParseUint(id[:12], 10, 64); err != nil {
			return id
		}
	}
}

// adjectives and surnames make random names, as dockerd's namesgenerator:
// adjective_surname.
var (
	adjectives = []string{
		"admiring", "affectionate", "agitated", "amazing", "angry", "awesome", "beautiful", "blissful",
		"bold", "boring", "brave", "busy", "charming", "clever", "compassionate", "competent",
		"condescending", "confident", "cool", "cranky", "crazy", "dazzling", "determined", "distracted",
		"dreamy", "eager", "ecstatic", "elastic", "elated", "elegant", "eloquent", "epic", "exciting",
		"fervent", "festive", "flamboyant", "focused", "friendly", "frosty", "funny", "gallant", "gifted",
		"goofy", "gracious", "great", "happy", "hardcore", "heuristic", "hopeful", "hungry", "infallible",
		"inspiring", "intelligent", "interesting", "jolly", "jovial", "keen", "kind", "laughing", "loving",
		"lucid", "magical", "modest", "musing", "mystifying", "naughty", "nervous", "nice", "nifty",
		"nostalgic", "objective", "optimistic", "peaceful", "pedantic", "pensive", "practical", "priceless",
		"quirky", "quizzical", "recursing", "relaxed", "reverent", "romantic", "sad", "serene", "sharp",
		"silly", "sleepy", "stoic", "strange", "stupefied", "suspicious", "sweet", "tender", "thirsty",
		"trusting", "unruffled", "upbeat", "vibrant", "vigilant", "vigorous", "wizardly", "wonderful",
		"xenodochial", "youthful", "zealous", "zen",
	}
	surnames = []string{
		"agnesi", "albattani", "allen", "almeida", "archimedes", "ardinghelli", "aryabhata", "austin",
		"babbage", "banach", "bardeen", "bartik", "bassi", "bell", "benz", "bhabha", "blackwell", "bohr",
		"booth", "borg", "bose", "boyd", "brahmagupta", "brattain", "brown", "carson", "cerf", "chandrasekhar",
		"chaplygin", "chatelet", "chaum", "clarke", "cohen", "colden", "cori", "cray", "curie", "darwin",
		"davinci", "diffie", "dijkstra", "dirac", "driscoll", "dubinsky", "easley", "edison", "einstein",
		"elion", "engelbart", "euclid", "euler", "faraday", "fermat", "fermi", "feynman", "franklin",
		"galileo", "gates", "goldberg", "goldstine", "goldwasser", "goodall", "hamilton", "haslett",
		"hawking", "heisenberg", "hermann", "hodgkin", "hofstadter", "hoover", "hopper", "hugle", "hypatia",
		"jang", "jennings", "jepsen", "johnson", "joliot", "jones", "kalam", "kare", "keller", "kepler",
		"khorana", "kilby", "kirch", "knuth", "kowalevski", "lalande", "lamarr", "lamport", "leakey",
		"leavitt", "lehmann", "lewin", "lichterman", "liskov", "lovelace", "lumiere", "mahavira", "margulis",
		"matsumoto", "maxwell", "mayer", "mccarthy", "mcclintock", "mclean", "mcnulty", "meitner", "mendel",
		"mirzakhani", "montalcini", "moore", "morse", "moser", "napier", "nash", "neumann", "newton",
		"nightingale", "nobel", "noether", "northcutt", "noyce", "panini", "pare", "pascal", "pasteur",
		"payne", "perlman", "pike", "poincare", "poitras", "ptolemy", "raman", "ramanujan", "ride", "ritchie",
		"robinson", "roentgen", "rosalind", "rubin", "saha", "sammet", "sanderson", "shannon", "shaw",
		"shirley", "shockley", "sinoussi", "snyder", "solomon", "spence", "stonebraker", "sutherland",
		"swanson", "swartz", "swirles", "taussig", "tesla", "thompson", "torvalds", "turing", "varahamihira",
		"vaughan", "villani", "visvesvaraya", "volhard", "wescoff", "wiles", "williams", "wilson", "wing",
		"wozniak", "wright", "wu", "yalow", "yonath", "zhukovsky",
	}
)

func pick(list []string) string {
	n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(list))))
	return list[n.Int64()]
}

// randomName returns adjective_surname, with a digit appended after
// retry > 0, as dockerd's namesgenerator.GetRandomName (which never
// returns boring_wozniak).
func randomName(retry int) string {
	for {
		name := pick(adjectives) + "_" + pick(surnames)
		if name == "boring_wozniak" {
			continue
		}
		if retry > 0 {
			n, _ := rand.Int(rand.Reader, big.NewInt(10))
			name += n.String()
		}
		return name
	}
}
