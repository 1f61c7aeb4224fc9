/* dmg_i18n.h: gettext for every user-visible message (po/). */
#pragma once
#include <glib/gi18n-lib.h>
