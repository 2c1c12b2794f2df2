package projects

// Recipes is the directory under Root that holds the recipes' logs:
// projects/_recipes/<recipe>/<log>/<YYYY-MM>/<id>.pb. No project can be
// named so (a project starts with a letter or digit), so a recipe's logs
// never meet an app's, and a meta that does not know them finds no valid
// project there.
const Recipes = "_recipes"

// ReleasesLog is the log of a recipe's releases, beside its channels'
// logs; no channel can be named so (a channel starts with a letter or
// digit).
const ReleasesLog = "_releases"

// A recipe's logs take the place of an app's in an Address: Project is
// Recipes, Env the recipe and App the log, ReleasesLog or a channel. The
// same record paths, parents, forks, integrity rules, subjects and webhooks
// then serve them as they serve apps.

// ReleasesOf is the address of recipe's releases log.
func ReleasesOf(recipe string) Address {
	return Address{Project: Recipes, Env: recipe, App: ReleasesLog}
}

// ChannelOf is the address of the log of recipe's channel.
func ChannelOf(recipe, channel string) Address {
	return Address{Project: Recipes, Env: recipe, App: channel}
}

// IsRecipe says a is one of a recipe's logs, not an app.
func (a Address) IsRecipe() bool { return a.Project == Recipes }

// IsReleases says a is a recipe's releases log.
func (a Address) IsReleases() bool { return a.IsRecipe() && a.App == ReleasesLog }

// IsChannel says a is a recipe's channel log.
func (a Address) IsChannel() bool { return a.IsRecipe() && a.App != ReleasesLog }

// Recipe is the recipe whose log a is, "" for an app.
func (a Address) Recipe() string {
	if !a.IsRecipe() {
		return ""
	}
	return a.Env
}

// Channel is the channel whose log a is, "" for an app or a releases log.
func (a Address) Channel() string {
	if !a.IsChannel() {
		return ""
	}
	return a.App
}

func (a Address) validateRecipeLog() error {
	if err := ValidateRecipe(a.Env); err != nil {
		return err
	}
	if a.App == ReleasesLog {
		return nil
	}
	return ValidateChannel(a.App)
}

// ValidateRecipe checks a recipe's name as Co-op Cloud names them (the
// name of its git repository, e.g. "nextcloud", "matrix-synapse"): a
// lowercase label of letters, digits, '-' and '_', starting with a letter
// or digit, at most 63 characters.
func ValidateRecipe(name string) error { return validateLabel("recipe", name, false) }

// ValidateChannel checks a channel's name, e.g. "stable", "staging": the
// same rules as a recipe's.
func ValidateChannel(name string) error { return validateLabel("channel", name, false) }

// ChannelRef is how a person names a channel: recipe/channel.
type ChannelRef struct {
	Recipe  string
	Channel string
}

// String formats r as recipe/channel.
func (r ChannelRef) String() string { return r.Recipe + "/" + r.Channel }

// Address is the channel's log.
func (r ChannelRef) Address() Address { return ChannelOf(r.Recipe, r.Channel) }

// Validate checks r's recipe and channel names, each by its rules (a
// *NameError naming the one that is wrong).
func (r ChannelRef) Validate() error {
	if err := ValidateRecipe(r.Recipe); err != nil {
		return err
	}
	return ValidateChannel(r.Channel)
}

// ParseChannelRef reads recipe/channel, e.g. "nextcloud/stable".
func ParseChannelRef(s string) (ChannelRef, error) {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			r := ChannelRef{Recipe: s[:i], Channel: s[i+1:]}
			if err := ValidateRecipe(r.Recipe); err != nil {
				return ChannelRef{}, &NameError{Field: "channel", Name: s, Reason: "its " + err.(*NameError).Field + ": " + err.(*NameError).Reason}
			}
			if err := ValidateChannel(r.Channel); err != nil {
				return ChannelRef{}, &NameError{Field: "channel", Name: s, Reason: "its name: " + err.(*NameError).Reason}
			}
			return r, nil
		}
	}
	return ChannelRef{}, &NameError{Field: "channel", Name: s, Reason: "not recipe/channel, e.g. nextcloud/stable"}
}
