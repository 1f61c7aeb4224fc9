/*
 * host_domcaps.h: host facts from libvirt's domain capabilities
 * (virConnectGetDomainCapabilities, `virsh domcapabilities`): what the
 * host the domain lives on offers for the domain's emulator,
 * architecture, machine and virt type.  Read: whether the host can pass
 * PCI devices through, <devices><hostdev><enum name='pciBackend'>.
 */
#pragma once

#include <glib.h>
#include <libvirt/libvirt.h>
#include <stdbool.h>

#include "domain_conf.h"
#include "host_profile.h"

/* The domain capabilities of a QEMU driver are 10 to 30 KiB (most of it
 * the CPU models); more than this is not libvirt's answer, and is not
 * read. */
#define DMG_DOMCAPS_XML_MAX (1024 * 1024)

typedef struct {
    /* <enum name='pciBackend'> lists the value: libvirt 9.0's
     * virQEMUCapsFillDomainDeviceHostdevCaps() lists "default" and
     * "vfio" together when the host has an IOMMU and /dev/vfio/vfio and
     * the emulator has vfio-pci, and neither otherwise. */
    bool pci_backend_default;
    bool pci_backend_vfio;
} dmgDomainCaps;

/* Ask @conn for domain capabilities from now on (the profile keeps a
 * reference to it, dropped by dmg_host_profile_free), forgetting what
 * was cached.  @conn should come from dmg_libvirt_open(), which silences
 * libvirt's own error printing.  libvirt answers only a read-write
 * connection (virConnectGetDomainCapabilities: "read only access
 * prevents virConnectGetDomainCapabilities"); on a read-only one, and on
 * the test driver (VIR_ERR_NO_SUPPORT), every lookup is NULL.
 * In libvirt_source.c, which links libvirt; the rest of this header does
 * not, so the hook, which never calls libvirt, does not link it. */
void dmg_host_profile_use_domcaps(dmgHostProfile *host, virConnectPtr conn);

/* The same for any @source (dmgDomcapsSource, host_profile.h); the
 * profile owns it from now on, and releases the one it had.  A source
 * without @fetch: no domain capabilities. */
void dmg_host_profile_set_domcaps_source(dmgHostProfile *host,
                                         const dmgDomcapsSource *source);

/* The domain capabilities for @def's <emulator>, os/type/@arch,
 * os/type/@machine and <domain type>, each NULL to libvirt when the
 * domain has none; asked once per distinct tuple and cached in @host,
 * failures too.  NULL when @host has no connection, libvirt cannot answer
 * (the message is not printed), or its answer is not read (see
 * dmg_host_domcaps_problem).  One thread per profile: two threads may
 * look up in two profiles at once, never in one. */
const dmgDomainCaps *dmg_host_domcaps_lookup(dmgHostProfile *host,
                                             const dmgDomainDef *def);

/* Why libvirt's answer for @def was not read (larger than
 * DMG_DOMCAPS_XML_MAX, not well-formed XML, a <!DOCTYPE>), for a warning
 * (it never quotes the answer); NULL when it was read or never came.
 * Looks up as dmg_host_domcaps_lookup() does. */
const char *dmg_host_domcaps_problem(dmgHostProfile *host, const dmgDomainDef *def);

/* The parser: @xml of @len bytes (no NUL needed).  FALSE with @error when
 * it is too long, malformed or carries a DTD; TRUE with *@known FALSE
 * when it holds no <enum name='pciBackend'> (a driver that does not
 * report it). */
gboolean dmg_domcaps_parse(const char *xml, gsize len, dmgDomainCaps *caps,
                           gboolean *known, GError **error);
