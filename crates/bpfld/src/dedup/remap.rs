//! Rewriting what referred to the deduplicated BTF: type ids through the
//! id map, and string offsets (BTF.ext records, section names) into the
//! compacted string table, re-adding the strings it dropped.

use super::Dedup;
use crate::error::{Error, Result};
use crate::model::btf::{Btf, StringTable};
use crate::model::btf_ext::BtfExt;
use crate::model::object::Section;

impl Dedup {
    /// The new id of old type id `old` (for BTF.ext `type_id` fields).
    pub fn type_id(&self, old: u32) -> Result<u32> {
        self.map.get(old as usize).map(|t| t.0).ok_or_else(|| {
            Error::new(format!(
                "type id {old} beyond the last type {} of the deduplicated input",
                self.map.len().saturating_sub(1)
            ))
        })
    }

    /// The offset in the new string table of the string at offset `off`
    /// of `old`'s table (the BTF given to [`super::dedup`]; after [`super::dedup_many`],
    /// use [`Dedup::add_string`] with the input's bytes); the string is
    /// added when the compacted table does not hold it.
    pub fn string(&mut self, old: &Btf, off: u32) -> Result<u32> {
        let bytes = old.name_bytes(off)?;
        Ok(self.add_string(bytes))
    }

    /// The offset of `bytes` in the new string table, added when absent
    /// (e.g. the section names `.BTF.ext` refers to).
    pub fn add_string(&mut self, bytes: &[u8]) -> u32 {
        let btf = &self.btf;
        let table = self
            .strings
            .get_or_insert_with(|| StringTable::from_btf(btf));
        let new = table.add(bytes);
        if let Some(added) = table.bytes.get(self.btf.strings.len()..) {
            self.btf.strings.extend_from_slice(added);
        }
        new
    }

    /// Remaps the func_info, line_info and CO-RE records of `sections`
    /// (which referred to `old`, the BTF given to [`super::dedup`]) to the
    /// deduplicated BTF, and adds the names of the sections that have
    /// records to its string table (`.BTF.ext` names sections through
    /// it). On error the sections are unchanged.
    pub fn remap_sections(&mut self, old: &Btf, sections: &mut [Section]) -> Result<()> {
        let mut records = Vec::with_capacity(sections.len());
        for s in sections.iter() {
            let (mut f, mut l, mut c) = (
                s.func_info.clone(),
                s.line_info.clone(),
                s.core_relos.clone(),
            );
            self.remap_records(old, &mut f, &mut l, &mut c)
                .map_err(|e| e.in_section(&s.name))?;
            if !(f.is_empty() && l.is_empty() && c.is_empty()) {
                self.add_string(s.name.as_bytes());
            }
            records.push((f, l, c));
        }
        for (s, (f, l, c)) in sections.iter_mut().zip(records) {
            s.func_info = f;
            s.line_info = l;
            s.core_relos = c;
        }
        Ok(())
    }

    /// Remaps a whole `.BTF.ext` model (records and section names).
    pub fn remap_btf_ext(&mut self, old: &Btf, ext: &mut BtfExt) -> Result<()> {
        for s in &mut ext.func_info {
            s.sec_name_off = self.string(old, s.sec_name_off)?;
            self.remap_records(old, &mut s.records, &mut [], &mut [])
                .map_err(|e| e.in_section(&s.sec_name))?;
        }
        for s in &mut ext.line_info {
            s.sec_name_off = self.string(old, s.sec_name_off)?;
            self.remap_records(old, &mut [], &mut s.records, &mut [])
                .map_err(|e| e.in_section(&s.sec_name))?;
        }
        for s in &mut ext.core_relos {
            s.sec_name_off = self.string(old, s.sec_name_off)?;
            self.remap_records(old, &mut [], &mut [], &mut s.records)
                .map_err(|e| e.in_section(&s.sec_name))?;
        }
        Ok(())
    }

    fn remap_records(
        &mut self,
        old: &Btf,
        func_info: &mut [crate::model::btf_ext::FuncInfo],
        line_info: &mut [crate::model::btf_ext::LineInfo],
        core_relos: &mut [crate::model::btf_ext::CoreRelo],
    ) -> Result<()> {
        for f in func_info {
            f.type_id = self
                .type_id(f.type_id)
                .map_err(|e| e.context(format!("func_info at instruction {}", f.insn.0)))?;
        }
        for l in line_info {
            l.file_name_off = self.string(old, l.file_name_off)?;
            l.line_off = self.string(old, l.line_off)?;
        }
        for r in core_relos {
            r.type_id = self
                .type_id(r.type_id)
                .map_err(|e| e.context(format!("CO-RE relocation at instruction {}", r.insn.0)))?;
            r.access_str_off = self.string(old, r.access_str_off)?;
        }
        Ok(())
    }
}
