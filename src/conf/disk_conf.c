/*
 * disk_conf.c: the one thing of a <disk> that matters here, whether QEMU
 * reaches its storage through VFIO: a <disk type='nvme'> is an NVMe
 * controller assigned to QEMU's userspace NVMe driver, which pins guest
 * memory as a VFIO hostdev does.  After libvirt's src/conf/domain_conf.c
 * (virDomainDiskDefParseXML, virDomainDiskBackingStoreParse) and
 * virStorageSourceChainHasNVMe() (src/conf/storage_source_conf.c).
 *
 * The reader keeps a <disk> with only its chain of <backingStore>s
 * (domain_parse.c): their type attributes are all this reads.  A chain is
 * as deep as libxml2 lets a document nest (256 levels), no deeper.
 */
#include "domain_conf_priv.h"

#include "dmg_i18n.h"

/* type= of a <disk> or a <backingStore>: libvirt's virStorageType.  The
 * disk defaults to 'file' (virXMLPropEnumDefault()); a <backingStore>
 * without a type ends the chain. */
static int
dmg_storage_type_parse(const dmgXmlCtx *ctx, xmlNodePtr node, int *type,
                       GError **error)
{
    return dmg_xml_prop_enum(ctx, node, "type", dmgStorageTypeTypeFromString,
                             _("'file', 'block', 'dir', 'network', 'volume', 'nvme' or 'vhostuser'"),
                             type, error);
}

/* virStorageSourceChainHasNVMe(): the disk's own source or any backing
 * store in its chain.  A disk counts once, as libvirt's
 * qemuDomainGetNumVFIODevices() counts it. */
int
dmg_disk_parse(const dmgXmlCtx *ctx, xmlNodePtr node, dmgDomainDef *def,
               GError **error)
{
    int type = DMG_STORAGE_TYPE_FILE;
    bool nvme;

    if (dmg_storage_type_parse(ctx, node, &type, error) < 0)
        return -1;
    nvme = type == DMG_STORAGE_TYPE_NVME;
    for (xmlNodePtr bs = dmg_xml_child(node, "backingStore"); bs;
         bs = dmg_xml_child(bs, "backingStore")) {
        int found;

        type = -1;
        if ((found = dmg_storage_type_parse(ctx, bs, &type, error)) < 0)
            return -1;
        if (found == 0)
            break;
        nvme |= type == DMG_STORAGE_TYPE_NVME;
    }
    if (nvme)
        def->nvme_disks++;
    return 0;
}
