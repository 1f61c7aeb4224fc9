/*
 * run_balloon.h: the balloon part of `virt-dmaguard run`.
 */
#pragma once

#include <glib.h>

#include "machine.h"
#include "vm.h"

typedef struct {
    guint64 target;
    guint64 inflated_pages;
    guint64 discarded_pages;
    guint64 skipped_pages;
    guint64 returned;                    /* bytes of RSS the host got back */
    guint64 audited_pages;
    guint64 stale_pages;
} balloon_report;

/* Inflate the balloon of @m (realized on @v's memory) down to @target
 * bytes of guest memory, and audit every VFIO container afterwards. */
gboolean run_balloon(vm *v, vmm_machine *m, guint64 ram_size, guint64 target,
                     balloon_report *rep, GError **error);
