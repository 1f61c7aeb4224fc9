/*
 * domain_conf_priv.h: what the files of the domain parser share, and no
 * one else: domain_parse.c (the document, <devices>, aliases),
 * hostdev_conf.c (<hostdev>, <interface type='hostdev'>, <qemu:override>,
 * dmaguard's <metadata>), memory_conf.c (the guest's memory, <memballoon>,
 * <iommu>, <memory>), disk_conf.c (<disk>), controller_conf.c
 * (<controller type='pci'>) and device_conf.c (<alias>, PCI addresses).  Everyone
 * else uses domain_conf.h.
 *
 * domain_conf.c does not include this header: with domain_conf.h it is one
 * unit for the include-circle check, and this header includes
 * domain_conf.h for the types, so that include would close a circle.
 * That is why the document parser lives in domain_parse.c.
 */
#pragma once

#include <glib.h>
#include <libxml/tree.h>

#include "domain_conf.h"
#include "xml_util.h"

/* domain_conf.c */

void dmg_hugepage_def_clear(gpointer data);

/* device_conf.c */

char *dmg_parse_alias(xmlNodePtr dev);
int dmg_parse_pci_address(const dmgXmlCtx *ctx, xmlNodePtr addr,
                          dmgPCIAddress *out, GError **error);
int dmg_parse_guest_address(const dmgXmlCtx *ctx, xmlNodePtr dev,
                            dmgDeviceAddress *out, GError **error);
int dmg_parse_virtio_options(const dmgXmlCtx *ctx, xmlNodePtr driver,
                             dmgVirtioOptions *out, GError **error);

/* hostdev_conf.c */

void dmg_hostdev_def_free(dmgHostdevDef *h);
dmgHostdevDef *dmg_hostdev_parse(const dmgXmlCtx *ctx, xmlNodePtr node,
                                 GError **error);
int dmg_interface_hostdevs_parse(const dmgXmlCtx *ctx, xmlNodePtr devices,
                                 dmgDomainDef *def, GError **error);
int dmg_qemu_override_parse(const dmgXmlCtx *ctx, xmlNodePtr root,
                            dmgDomainDef *def, GError **error);
int dmg_metadata_parse(const dmgXmlCtx *ctx, xmlNodePtr root, dmgDomainDef *def,
                       GError **error);

/* disk_conf.c */

int dmg_disk_parse(const dmgXmlCtx *ctx, xmlNodePtr node, dmgDomainDef *def,
                   GError **error);

/* controller_conf.c */

bool dmg_controller_wanted(const xmlChar **attributes, int nb_attributes);
int dmg_controller_parse(const dmgXmlCtx *ctx, xmlNodePtr node, dmgDomainDef *def,
                         GError **error);
void dmg_controllers_assign_indexes(dmgDomainDef *def);

/* memory_conf.c */

void dmg_memory_def_free(dmgMemoryDef *m);
int dmg_memballoon_parse(const dmgXmlCtx *ctx, xmlNodePtr node,
                         dmgDomainDef *def, GError **error);
int dmg_iommu_parse(const dmgXmlCtx *ctx, xmlNodePtr node, dmgDomainDef *def,
                    GError **error);
int dmg_memory_parse(const dmgXmlCtx *ctx, xmlNodePtr node, dmgDomainDef *def,
                     GError **error);
int dmg_domain_memory_parse(const dmgXmlCtx *ctx, xmlNodePtr root,
                            dmgDomainDef *def, GError **error);
